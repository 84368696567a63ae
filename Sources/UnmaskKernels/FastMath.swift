/// Vectorized exp: softmax and SiLU call it hundreds of millions of times per batch, where
/// the libm call alone would cost as much as the attention products.
public enum FastMath {
    public typealias Vector = SIMD16<Float>

    /// exp(x) within 2 ulp over the float range (Cephes' expf polynomial after range reduction);
    /// results below e^-87.3 flush to that bound's value and above e^88.7 to it, never to Inf.
    @inline(__always)
    public static func exp(_ x: Vector) -> Vector {
        // `replacing(with:where:)` compiles to min/max instructions; `pointwiseMin` does not.
        var clamped = x.replacing(with: 88.72283, where: x .> 88.72283)
        clamped.replace(with: -87.33654, where: clamped .< -87.33654)
        // Adding 1.5·2²³ rounds to the nearest integer and leaves it in the low mantissa bits,
        // which avoids the generic (and slow) float→int vector conversion.
        let shifted = clamped * 1.44269504088896341 + 12582912
        let n = shifted - 12582912
        var r = clamped - n * 0.693359375
        r = r + n * 2.12194440e-4
        let r2 = r * r
        var p = Vector(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * r2 + r + 1
        // 2^n built from its exponent bits; n is in [-126, 128] after the clamp, so split the
        // power in two halves to stay representable at both ends.
        let ni = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let half = ni &>> 1
        let scaleA = unsafeBitCast((half &+ 127) &<< 23, to: Vector.self)
        let scaleB = unsafeBitCast((ni &- half &+ 127) &<< 23, to: Vector.self)
        return p * scaleA * scaleB
    }

    @inline(__always)
    public static func exp(_ x: Float) -> Float { exp(Vector(repeating: x))[0] }

    /// The largest of n floats.
    @inline(__always)
    public static func maximum(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var best = Vector(repeating: -.greatestFiniteMagnitude)
        var i = 0
        while i + Vector.scalarCount <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: Vector.self)
            best.replace(with: v, where: v .> best)
            i += Vector.scalarCount
        }
        var result = best.max()
        while i < n { if x[i] > result { result = x[i] }; i += 1 }
        return result
    }

    /// x *= factor over n floats.
    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, count n: Int, by factor: Float) {
        var i = 0
        while i + Vector.scalarCount <= n {
            let raw = UnsafeMutableRawPointer(x + i)
            raw.storeBytes(of: raw.loadUnaligned(as: Vector.self) * factor, as: Vector.self)
            i += Vector.scalarCount
        }
        while i < n { x[i] *= factor; i += 1 }
    }

    /// In-place y = exp(x - shift) over n floats; returns their sum.
    @inline(__always)
    public static func expShifted(_ x: UnsafeMutablePointer<Float>, count n: Int, shift: Float) -> Float {
        var sum = Vector()
        var i = 0
        let w = Vector.scalarCount
        while i + w <= n {
            let raw = UnsafeMutableRawPointer(x + i)
            let v = exp(raw.loadUnaligned(as: Vector.self) - shift)
            raw.storeBytes(of: v, as: Vector.self)
            sum += v
            i += w
        }
        var total = sum.sum()
        while i < n {
            let v = exp(x[i] - shift)
            x[i] = v
            total += v
            i += 1
        }
        return total
    }
}
