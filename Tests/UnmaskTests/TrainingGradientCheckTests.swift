import Foundation
import XCTest
import UnmaskTestSupport
@testable import Unmask
import UnmaskKernels

/// Finite-difference checks of `LoRADecoder`'s gradients on a model with grouped-query attention,
/// projection biases and tied embeddings (the Qwen2 fixture), in both attention modes; and on the
/// Gemma 3 and Qwen3 fixtures, whose layers add sandwich norms, q/k norms, GELU-tanh, a custom
/// attention scale, scaled embeddings and sliding windows shorter than the rows.
final class TrainingGradientCheckTests: XCTestCase {
    func makeDecoder(_ fixture: String = "qwen2-bias-f32", path: String? = nil, precision: WeightPrecision = .auto) throws -> LoRADecoder {
        let model = try Checkpoint(path: path ?? Fixtures.path("models", fixture)).loadModel(lmHead: true, precision: precision)
        let decoder = LoRADecoder(model: model, rank: 4, alpha: 8, seed: 3)
        var state: UInt64 = 11
        for layer in decoder.parameters.layers {
            for pair in layer {
                for i in 0..<pair.b.count {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    pair.b[i] = (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.4
                }
            }
        }
        return decoder
    }

    /// Moves every LoRA parameter by `step` along `direction`.
    func shift(_ decoder: LoRADecoder, along direction: LoRATensors, by step: Float) {
        for (l, layer) in decoder.parameters.layers.enumerated() {
            for (p, pair) in layer.enumerated() {
                let d = direction.layers[l][p]
                for i in 0..<pair.a.count { pair.a[i] += step * d.a[i] }
                for i in 0..<pair.b.count { pair.b[i] += step * d.b[i] }
            }
        }
    }

    /// For each LoRA tensor T: (L(θ + εu) − L(θ − εu)) / 2ε against ‖g_T‖, with u = g_T/‖g_T‖ on T
    /// and 0 elsewhere. Returns the worst relative error.
    @discardableResult
    func check(_ decoder: LoRADecoder, loss: (LoRATensors) -> Float) -> Float {
        let gradients = LoRATensors(model: decoder.model, rank: decoder.rank)
        _ = loss(gradients)
        let direction = LoRATensors(model: decoder.model, rank: decoder.rank)
        let scratch = LoRATensors(model: decoder.model, rank: decoder.rank)
        let epsilon: Float = 2e-3
        var worst: Float = 0
        for l in 0..<gradients.layers.count {
            for p in LoRAProjection.allCases {
                for isA in [true, false] {
                    let g = isA ? gradients[l, p].a : gradients[l, p].b
                    let u = isA ? direction[l, p].a : direction[l, p].b
                    var squared: Float = 0
                    for i in 0..<g.count { squared += g[i] * g[i] }
                    let norm = squared.squareRoot()
                    XCTAssertGreaterThan(norm, 0)
                    direction.zero()
                    for i in 0..<g.count { u[i] = g[i] / norm }
                    shift(decoder, along: direction, by: epsilon)
                    let plus = loss(scratch)
                    shift(decoder, along: direction, by: -2 * epsilon)
                    let minus = loss(scratch)
                    shift(decoder, along: direction, by: epsilon)
                    let numeric = (plus - minus) / (2 * epsilon)
                    let relative = abs(numeric - norm) / norm
                    XCTAssertLessThanOrEqual(relative, 2e-2, "\(LoRATensors.name(layer: l, projection: p, isA: isA)): \(numeric) vs \(norm)")
                    worst = max(worst, relative)
                }
            }
        }
        return worst
    }

    func testMNTPGradientsMatchFiniteDifferences() throws {
        let decoder = try makeDecoder()
        let batch = TokenBatch(leftPadding: [[5, 9, 17, 33, 40, 2], [8, 4, 61, 7]], padding: 0)
        var labels = [Int32](repeating: -100, count: batch.ids.count)
        labels[2] = 100; labels[4] = 7; labels[6 + 4] = 300; labels[6 + 5] = 12
        for causal in [false, true] {
            let worst = check(decoder) { decoder.mntp(batch, labels: labels, mode: causal ? .causal : .bidirectional, into: $0) }
            print("causal \(causal): worst finite-difference relative error \(worst)")
        }
    }

    func testContrastiveGradientsMatchFiniteDifferences() throws {
        let decoder = try makeDecoder()
        let queries = TokenBatch(leftPadding: [[5, 9, 17], [8, 4, 61, 7, 9]], padding: 0)
        // Two positives and one hard negative.
        let documents = TokenBatch(leftPadding: [[11, 12, 13, 14], [21, 22], [31, 32, 33]], padding: 0)
        for causal in [false, true] {
            let worst = check(decoder) { decoder.contrastive(queries: queries, documents: documents, mode: causal ? .causal : .bidirectional, into: $0) }
            print("causal \(causal): worst finite-difference relative error \(worst)")
        }
    }

    /// With dropout on (fixed seed) the loss is a fixed function of the parameters: the masks the
    /// backward recomputes must be the forward's, or this fails.
    func testGradientsWithDropoutMatchFiniteDifferences() throws {
        let decoder = try makeDecoder()
        decoder.loraDropout = 0.3
        decoder.attentionDropout = 0.3
        let batch = TokenBatch(leftPadding: [[5, 9, 17, 33, 40, 2], [8, 4, 61, 7]], padding: 0)
        var labels = [Int32](repeating: -100, count: batch.ids.count)
        labels[2] = 100; labels[4] = 7; labels[6 + 4] = 300; labels[6 + 5] = 12
        check(decoder) { decoder.mntp(batch, labels: labels, dropoutSeed: 77, into: $0) }
        let queries = TokenBatch(leftPadding: [[5, 9, 17], [8, 4, 61, 7, 9]], padding: 0)
        check(decoder) { decoder.contrastive(queries: queries, documents: queries, dropoutSeed: 78, into: $0) }
        // Dropout is really on: another seed gives another loss.
        let scratch = LoRATensors(model: decoder.model, rank: decoder.rank)
        XCTAssertNotEqual(decoder.mntp(batch, labels: labels, dropoutSeed: 77, into: scratch), decoder.mntp(batch, labels: labels, dropoutSeed: 79, into: scratch))
        XCTAssertEqual(decoder.mntp(batch, labels: labels, dropoutSeed: 77, into: scratch), decoder.mntp(batch, labels: labels, dropoutSeed: 77, into: scratch))
    }

    /// Keeping every layer's activations and recomputing them from the layer inputs give the same gradients.
    func testKeptAndRecomputedActivationsGiveTheSameGradients() throws {
        let decoder = try makeDecoder()
        decoder.loraDropout = 0.2
        decoder.attentionDropout = 0.1
        let queries = TokenBatch(leftPadding: [[5, 9, 17], [8, 4, 61, 7, 9]], padding: 0)
        func gradients(budget: Int) -> [Float] {
            decoder.activationBudget = budget
            let g = LoRATensors(model: decoder.model, rank: decoder.rank)
            decoder.contrastive(queries: queries, documents: queries, dropoutSeed: 5, into: g)
            return g.tensors.flatMap(\.array)
        }
        let kept = gradients(budget: 1 << 30), recomputed = gradients(budget: 0)
        XCTAssertLessThan(Compare.relativeL2(kept, recomputed), 1e-6)
        XCTAssertGreaterThan(kept.map(abs).max() ?? 0, 0)
    }

    /// QLoRA: LoRA over a frozen base computed from its stored blocks (the tiny llama GGUF: Q8_0
    /// tied embedding and LM head, Q4_0/Q5_1/Q4_1/F16/Q5_0/Q8_0 projections, permuted Q/K). Its
    /// gradients pass the finite-difference check and equal those over the same weights as float32.
    func testGradientsOverAQuantizedBaseMatchTheFloat32Path() throws {
        let directory = try Fixtures.temporaryDirectory("qlora")
        let path = try GGUFFixtures.write(GGUFBuilder.tinyLlama(seed: 3).data(), in: directory)
        let stored = try makeDecoder(path: path, precision: .auto), float32 = try makeDecoder(path: path, precision: .float32)
        XCTAssertEqual(stored.model.weights.layers[0].qProj.weight.type, .q4_0)
        XCTAssertEqual(stored.model.lmHead?.type, .q8_0)
        let batch = TokenBatch(leftPadding: [[5, 9, 1, 3, 10, 2], [8, 4, 11, 7]], padding: 0)
        var labels = [Int32](repeating: -100, count: batch.ids.count)
        labels[2] = 10; labels[4] = 7; labels[6 + 4] = 3; labels[6 + 5] = 11
        let queries = TokenBatch(leftPadding: [[5, 9, 1], [8, 4, 6, 7, 9]], padding: 0)
        for decoder in [stored, float32] { decoder.loraDropout = 0.2 }
        func gradients(_ decoder: LoRADecoder) -> (Float, Float, [Float]) {
            let g = LoRATensors(model: decoder.model, rank: decoder.rank)
            let mntp = decoder.mntp(batch, labels: labels, dropoutSeed: 4, into: g)
            let contrastive = decoder.contrastive(queries: queries, documents: queries, dropoutSeed: 5, into: g)
            return (mntp, contrastive, g.tensors.flatMap(\.array))
        }
        let (a, b) = (gradients(stored), gradients(float32))
        XCTAssertEqual(a.0, b.0, accuracy: 1e-5 * max(1, abs(b.0)))
        XCTAssertEqual(a.1, b.1, accuracy: 1e-5 * max(1, abs(b.1)))
        XCTAssertLessThan(Compare.relativeL2(a.2, b.2), 1e-4)
        XCTAssertGreaterThan(a.2.map(abs).max() ?? 0, 0)
        check(stored) { stored.mntp(batch, labels: labels, dropoutSeed: 4, into: $0) }
        check(stored) { stored.contrastive(queries: queries, documents: queries, dropoutSeed: 5, into: $0) }
    }

    func testGemma3AndQwen3GradientsMatchFiniteDifferences() throws {
        for fixture in ["gemma3-tiny-f32", "qwen3-tiny-bf16"] {
            let decoder = try makeDecoder(fixture)
            XCTAssertNotNil(decoder.model.config.slidingWindow, fixture)
            // Rows of 11 and 9 tokens against windows of 6 (bidirectional Gemma: 3 either side).
            let batch = TokenBatch(leftPadding: [[5, 9, 17, 33, 40, 12, 71, 8, 90, 14, 22], [8, 4, 61, 7, 30, 51, 19, 6, 44]], padding: 0)
            var labels = [Int32](repeating: -100, count: batch.ids.count)
            labels[2] = 100; labels[6] = 7; labels[11 + 4] = 300; labels[11 + 9] = 12
            let queries = TokenBatch(leftPadding: [[5, 9, 17, 23, 11, 7, 42, 3], [8, 4, 61, 7, 9, 13, 88, 31, 2, 15]], padding: 0)
            let documents = TokenBatch(leftPadding: [[11, 12, 13, 14, 15, 16, 17, 18, 19], [21, 22, 23, 24, 25, 26, 27], [31, 32, 33, 34, 35, 36, 37, 38]], padding: 0)
            for mode in [AttentionMode.bidirectional, .causal] {
                let mntp = check(decoder) { decoder.mntp(batch, labels: labels, mode: mode, into: $0) }
                let contrastive = check(decoder) { decoder.contrastive(queries: queries, documents: documents, mode: mode, into: $0) }
                print("\(fixture) \(mode): worst finite-difference relative error MNTP \(mntp), contrastive \(contrastive)")
            }
        }
    }
}
