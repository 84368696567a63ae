import Foundation

/// Output layouts of a corpus run.
/// - `jsonl`: `{"id": ..., <kept fields>, "embedding": [...]}` a line.
/// - `npy`: the vectors as one `.npy` array [rows, width] (FAISS, LanceDB and numpy load it
///   directly), its records' ids and kept fields in `<base>.ids.jsonl`, and `<base>.manifest.json`.
public enum CorpusFormat: String, Sendable, Codable, CaseIterable { case jsonl, npy }

/// Shard `index` of `count` (0-based): a contiguous run of whole windows, so that shards batch
/// exactly as one process does and their merge equals a single run.
public struct CorpusShard: Sendable, Codable, Equatable {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw UnmaskError.invalidInput(source: "--shard", reason: "the shard count must be at least 1, got \(count)") }
        guard (0..<count).contains(index) else {
            throw UnmaskError.invalidInput(source: "--shard", reason: "the shard index must be from 0 to \(count - 1), got \(index)")
        }
        self.index = index
        self.count = count
    }

    /// The records of `total` this shard takes, in windows of `window`.
    public func range(records total: Int, window: Int) -> Range<Int> {
        let windows = (total + window - 1) / window
        let first = index * windows / count, last = (index + 1) * windows / count
        return min(first * window, total)..<min(last * window, total)
    }

    /// `-00002-of-00004`, the suffix of this shard's file names.
    public var suffix: String { String(format: "-%05d-of-%05d", index, count) }
}

/// Where a run's files go: the data file, the ids file (npy), the manifest (`<base>.manifest.json`
/// for npy, `<data>.manifest.json` for a JSONL shard),
/// and while the run is unfinished, `.partial` files and a `.resume.json` journal.
public struct CorpusPaths: Sendable, Equatable {
    public let data: String
    public let ids: String?
    public let manifest: String?
    public var journal: String { data + ".resume.json" }
    public static func partial(_ path: String) -> String { path + ".partial" }

    /// `output` names the unsharded result (`out.jsonl`, `vectors.npy`); a shard inserts its suffix
    /// before the extension (`out-00001-of-00004.jsonl`).
    public init(output: String, format: CorpusFormat, shard: CorpusShard?) {
        let base = Self.base(output, format: format) + (shard?.suffix ?? "")
        switch format {
        case .jsonl:
            let ext = (output as NSString).pathExtension
            data = base + (ext.isEmpty ? "" : "." + ext)
            ids = nil
            // Named after the data file, so a JSONL and an npy run of one base never share it.
            manifest = shard == nil ? nil : data + ".manifest.json"
        case .npy:
            data = base + ".npy"
            ids = base + ".ids.jsonl"
            manifest = base + ".manifest.json"
        }
    }

    /// The output path without its extension (a `.npy` output's extension is always `.npy`).
    static func base(_ output: String, format: CorpusFormat) -> String {
        let ext = (output as NSString).pathExtension
        if format == .npy { return ext.lowercased() == "npy" ? (output as NSString).deletingPathExtension : output }
        return ext.isEmpty ? output : (output as NSString).deletingPathExtension
    }
}

/// What a finished part holds and how it was made: merge checks that parts belong together,
/// search embeds queries the same way and reads the stored precision back.
public struct CorpusManifest: Codable, Sendable, Equatable {
    public struct Input: Codable, Sendable, Equatable {
        public let path: String
        public let sha256: String
        public let records: Int
    }
    public var format: CorpusFormat
    public var input: Input
    /// The embedder's identity (model file, adapters, every option that changes the vectors).
    public var model: String
    public var dimension: Int
    public var precision: EmbeddingPrecision
    public var ranges: QuantizationRanges?
    public var keep: [String]
    public var instruction: String
    public var window: Int
    /// Records [first, last) of the input; the whole input for an unsharded or merged result.
    public var first: Int
    public var last: Int
    public var shard: CorpusShard?
    /// File names (not paths) of the vectors and ids, beside the manifest.
    public var embeddings: String
    public var ids: String?

    public var rows: Int { last - first }

    /// Why `self` (what a run would now make) differs from `other` (what an earlier run made), or nil.
    public func mismatch(with other: CorpusManifest) -> String? {
        if input.sha256 != other.input.sha256 || input.records != other.input.records { return "the input changed (SHA-256 \(input.sha256.prefix(12))…, was \(other.input.sha256.prefix(12))…)" }
        if model != other.model { return "the model or its options changed (now \(model); was \(other.model))" }
        var differences: [String] = []
        if format != other.format { differences.append("format \(format.rawValue) (was \(other.format.rawValue))") }
        if precision != other.precision { differences.append("precision \(precision.rawValue) (was \(other.precision.rawValue))") }
        if keep != other.keep { differences.append("--keep \(keep) (was \(other.keep))") }
        if instruction != other.instruction { differences.append("instruction '\(instruction)' (was '\(other.instruction)')") }
        if window != other.window { differences.append("--window \(window) (was \(other.window))") }
        if shard != other.shard { differences.append("--shard (was \(other.shard.map { "\($0.index)/\($0.count)" } ?? "none"))") }
        return differences.isEmpty ? nil : differences.joined(separator: ", ")
    }

    static func load(_ path: String) throws -> CorpusManifest {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw UnmaskError.fileNotFound(path: path, what: "corpus manifest") }
        do { return try JSONDecoder().decode(CorpusManifest.self, from: data) } catch {
            throw UnmaskError.malformedJSON(file: path, reason: "not an Unmask corpus manifest (\(error))")
        }
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self) + Data("\n".utf8)
    }
}

/// The `.npy` (format 1.0) header of a C-order array: magic, version, length, then a dict padded
/// with spaces to a multiple of 64 bytes and ending in a newline.
public enum NPYHeader {
    public static func bytes(descriptor: String, rows: Int, columns: Int) -> [UInt8] {
        var header = "{'descr': '\(descriptor)', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = UInt16(header.utf8.count)
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xff), UInt8(length >> 8)] + Array(header.utf8)
    }

    /// Parses a header written by numpy or `bytes`: (descr, rows, columns, data offset).
    public static func parse(_ data: Data, path: String) throws -> (descriptor: String, rows: Int, columns: Int, offset: Int) {
        func bad(_ why: String) -> UnmaskError { .invalidInput(source: path, reason: "not a 2-D .npy array: \(why)") }
        guard data.count >= 10, data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else { throw bad("no NUMPY magic") }
        let major = data[data.startIndex + 6]
        let lengthBytes = major == 1 ? 2 : 4
        guard data.count >= 8 + lengthBytes else { throw bad("truncated header") }
        var length = 0
        for i in 0..<lengthBytes { length |= Int(data[data.startIndex + 8 + i]) << (8 * i) }
        let offset = 8 + lengthBytes + length
        guard data.count >= offset, let header = String(data: data.subdata(in: (8 + lengthBytes)..<offset), encoding: .ascii) else { throw bad("truncated header") }
        guard let descr = header.firstMatch(of: /'descr':\s*'([^']+)'/)?.1 else { throw bad("no descr") }
        guard !header.contains("'fortran_order': True") else { throw bad("Fortran order") }
        guard let shape = header.firstMatch(of: /'shape':\s*\((\d+),\s*(\d+)\)/), let rows = Int(shape.1), let columns = Int(shape.2) else { throw bad("shape is not (rows, columns)") }
        return (String(descr), rows, columns, offset)
    }
}
