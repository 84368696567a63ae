/// Typed reads of `<arch>.*` metadata keys for an architecture's GGUF plan, with errors that
/// name the file and key.
public struct GGUFMetadataReader {
    let file: GGUFFile
    let arch: String

    private func invalid(_ key: String, _ expected: String) -> UnmaskError {
        .invalidField(file: file.fileName, field: key, expected: expected)
    }

    /// `<arch>.<suffix>` as a positive integer, `fallback` when absent.
    public func integer(_ suffix: String, default fallback: Int? = nil, maximum: Int = 1 << 31) throws -> Int? {
        let key = "\(arch).\(suffix)"
        guard let value = file.metadata[key] else { return fallback }
        guard let n = value.int else { throw invalid(key, "an integer, got \(value.typeName) \(value)") }
        guard n >= 1, n <= maximum else { throw invalid(key, "an integer from 1 to \(maximum), got \(n)") }
        return n
    }

    /// `<arch>.<suffix>` as a positive finite number, `fallback` when absent.
    public func number(_ suffix: String, default fallback: Double? = nil) throws -> Double? {
        let key = "\(arch).\(suffix)"
        guard let value = file.metadata[key] else { return fallback }
        guard let x = value.double, x.isFinite, x > 0 else { throw invalid(key, "a positive number, got \(value.typeName) \(value)") }
        return x
    }
}
