import Foundation
import HeapModule
import UnmaskKernels

/// One search result: a row of the index and its score.
public struct SearchHit: Sendable, Equatable, Comparable {
    public let row: Int
    public let score: Float
    /// Orders by score, then prefers the earlier row (so results are deterministic).
    public static func < (a: SearchHit, b: SearchHit) -> Bool { a.score != b.score ? a.score < b.score : a.row > b.row }
}

/// The `k` best of a stream of hits, in a min-heap of size k.
struct TopK {
    let k: Int
    private(set) var heap = Heap<SearchHit>()
    init(_ k: Int) { self.k = k }
    mutating func offer(_ hit: SearchHit) {
        if heap.count < k { heap.insert(hit) } else if let worst = heap.min, worst < hit { _ = heap.replaceMin(with: hit) }
    }
    mutating func merge(_ other: TopK) { for hit in other.heap.unordered { offer(hit) } }
    /// Best first.
    var sorted: [SearchHit] { heap.unordered.sorted(by: >) }
}

/// The vectors of a corpus run (`unmask embed --format npy`), memory-mapped, searched exactly:
/// - float32, float16, int8, uint8: cosine similarity between the float query and every
///   (dequantized) vector, by BLAS over blocks of rows;
/// - binary, ubinary: Hamming distance between the query's bits and every vector's for
///   `k × rescoreMultiplier` candidates, rescored by the float query · the candidates' bits, as
///   sentence-transformers' binary + rescore recipe does.
public final class VectorIndex: @unchecked Sendable {
    public struct Part {
        public let manifest: CorpusManifest
        let data: Data
        let offset: Int
        let idsPath: String
        /// Row number of the part's first row in the whole index.
        public let firstRow: Int
    }

    public let parts: [Part]
    /// What every part shares: the model identity, dimension, precision, ranges.
    public let manifest: CorpusManifest
    public let rows: Int
    private var cachedInverseNorms: [Float]?
    private var idLines: [[String]?]
    private let lock = NSLock()

    /// `path`: a manifest, the `.npy` beside one, or a folder (its unsharded npy manifest, else its shards).
    public init(path: String) throws {
        let manifests = try Self.manifests(at: path)
        var parts: [Part] = []
        var row = 0
        for (manifestPath, manifest) in manifests {
            guard manifest.format == .npy, let ids = manifest.ids else {
                throw UnmaskError.invalidInput(source: manifestPath, reason: "describes a \(manifest.format.rawValue) result; search needs --format npy output")
            }
            let folder = (manifestPath as NSString).deletingLastPathComponent
            let dataPath = (folder as NSString).appendingPathComponent(manifest.embeddings)
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: dataPath), options: .alwaysMapped) } catch {
                throw UnmaskError.fileNotFound(path: dataPath, what: "the index's vectors (named in \(manifestPath))")
            }
            let header = try NPYHeader.parse(data.prefix(4096), path: dataPath)
            let width = manifest.precision.width(dimension: manifest.dimension)
            guard header.descriptor == manifest.precision.npyDescriptor, header.columns == width, header.rows == manifest.rows,
                  data.count == header.offset + header.rows * width * manifest.precision.bytesPerValue else {
                throw UnmaskError.invalidInput(source: dataPath, reason: "holds \(header.descriptor) [\(header.rows), \(header.columns)] in \(data.count) bytes; \(manifestPath) says \(manifest.precision.npyDescriptor) [\(manifest.rows), \(width)]")
            }
            if let first = parts.first?.manifest, first.model != manifest.model || first.precision != manifest.precision || first.ranges != manifest.ranges {
                throw UnmaskError.invalidInput(source: manifestPath, reason: "was made by another model or precision than \(manifests[0].path)")
            }
            parts.append(Part(manifest: manifest, data: data, offset: header.offset, idsPath: (folder as NSString).appendingPathComponent(ids), firstRow: row))
            row += manifest.rows
        }
        self.parts = parts
        manifest = parts[0].manifest
        rows = row
        idLines = Array(repeating: nil, count: parts.count)
    }

    /// The manifests of the parts at `path`, each loaded once, in row order.
    static func manifests(at path: String) throws -> [(path: String, manifest: CorpusManifest)] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw UnmaskError.fileNotFound(path: path, what: "index (a folder, .npy or .manifest.json of `unmask embed --format npy`)") }
        if !isDirectory.boolValue {
            let manifest = path.hasSuffix(".manifest.json") ? path
                : path.lowercased().hasSuffix(".npy") ? (path as NSString).deletingPathExtension + ".manifest.json" : nil
            if let manifest { return [(manifest, try CorpusManifest.load(manifest))] }
            throw UnmaskError.invalidInput(source: path, reason: "give a folder, a .npy or a .manifest.json written by `unmask embed --format npy`")
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".manifest.json") }.sorted()
        let found = try names.map { name -> (path: String, manifest: CorpusManifest) in
            let full = (path as NSString).appendingPathComponent(name)
            return (full, try CorpusManifest.load(full))
        }.filter { $0.manifest.format == .npy }
        let whole = found.filter { $0.manifest.shard == nil }
        if whole.count == 1 { return whole }
        if whole.count > 1 { throw UnmaskError.invalidInput(source: path, reason: "holds several indexes (\(whole.map { ($0.path as NSString).lastPathComponent }.joined(separator: ", "))); name one") }
        let shards = found.sorted { ($0.manifest.first, $0.path) < ($1.manifest.first, $1.path) }
        guard !shards.isEmpty else { throw UnmaskError.invalidInput(source: path, reason: "holds no npy manifest (`unmask embed --format npy` writes one)") }
        var next = 0
        for (name, manifest) in shards {
            guard manifest.first == next, manifest.input.sha256 == shards[0].manifest.input.sha256 else {
                throw UnmaskError.invalidInput(source: name, reason: "the shards here do not tile one input (records \(manifest.first)..<\(manifest.last), expected from \(next)); merge them or remove strays")
            }
            next = manifest.last
        }
        return shards
    }

    /// The part that holds `row`.
    private func partIndex(of row: Int) -> Int { parts.lastIndex { $0.firstRow <= row }! }

    /// The output line of `row` as `unmask embed` wrote it to the ids file (id and kept fields).
    public func record(_ row: Int) throws -> String {
        let index = partIndex(of: row)
        lock.lock()
        defer { lock.unlock() }
        if idLines[index] == nil {
            let path = parts[index].idsPath
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw UnmaskError.fileNotFound(path: path, what: "the index's ids") }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0).map(String.init)
            guard lines.count == parts[index].manifest.rows else {
                throw UnmaskError.invalidInput(source: path, reason: "has \(lines.count) lines for \(parts[index].manifest.rows) vectors")
            }
            idLines[index] = lines
        }
        return idLines[index]![row - parts[index].firstRow]
    }

    /// A search result as one JSON object: the hit's ids line (`{"id", <kept fields>}`) with its score.
    public func result(_ hit: SearchHit) throws -> String {
        String(try record(hit.row).dropLast()) + ", \"score\": \(hit.score)}"
    }

    /// An embedder identity without its prompt: queries may take another prompt than the documents.
    public static func comparable(_ identity: String) -> String {
        identity.split(separator: "|").filter { !$0.hasPrefix("default_prompt=") }.joined(separator: "|")
    }

    /// Refuses queries from an embedder (named by its `EmbeddingCache.identity`) other than the
    /// index's model and options; the prompt may differ.
    public func checkQueries(embeddedBy identity: String, source: String) throws {
        guard Self.comparable(identity) == Self.comparable(manifest.model) else {
            throw UnmaskError.invalidInput(source: source, reason: "was embedded by \(manifest.model); the queries would be by \(identity): queries must be embedded the same way")
        }
    }

    /// Refuses an index that cannot rescore this one's candidates.
    public func checkRescoring(_ rescoring: VectorIndex) throws {
        guard isBinary, !rescoring.isBinary else {
            throw UnmaskError.invalidInput(source: "--rescore-index", reason: "rescores a binary index with a float32, float16 or int8 one; here \(manifest.precision.rawValue) and \(rescoring.manifest.precision.rawValue)")
        }
        guard rescoring.rows == rows, rescoring.manifest.input.sha256 == manifest.input.sha256,
              Self.comparable(rescoring.manifest.model) == Self.comparable(manifest.model), rescoring.manifest.dimension == manifest.dimension else {
            throw UnmaskError.invalidInput(source: "--rescore-index", reason: "is not the same corpus and model as the binary index (rows, input SHA-256, model and dimension must match)")
        }
    }

    public var isBinary: Bool { manifest.precision == .binary || manifest.precision == .ubinary }

    /// The `k` best rows for each query (float vectors of the index's dimension), best first. A
    /// binary index takes `k × rescoreMultiplier` Hamming-nearest candidates and rescores them with
    /// `rescoring` (a float or int8 index of the same corpus, read only at the candidates: the
    /// binary index in memory, the other on disk) by cosine, else by the query · their bits.
    public func search(_ queries: [[Float]], k: Int, rescoreMultiplier: Int = 4, rescoring: VectorIndex? = nil) throws -> [[SearchHit]] {
        if let rescoring { try checkRescoring(rescoring) }
        let d = manifest.dimension
        if let bad = queries.first(where: { $0.count != d }) {
            throw UnmaskError.invalidInput(source: "query", reason: "has \(bad.count) values; the index holds \(d)-dimensional vectors")
        }
        guard k >= 1 else { throw UnmaskError.invalidInput(source: "-k", reason: "must be at least 1, got \(k)") }
        if isBinary { return binarySearch(queries, k: k, candidates: k * max(1, rescoreMultiplier), rescoring: rescoring) }
        return exactSearch(queries, k: k)
    }

    /// 1 / ‖row‖ of every (dequantized) row, computed on the first exact search and kept (4 bytes a row).
    private func inverseNorms() -> [Float] {
        lock.lock()
        defer { lock.unlock() }
        if let cachedInverseNorms { return cachedInverseNorms }
        let d = manifest.dimension
        var out = [Float](repeating: 0, count: rows)
        out.withUnsafeMutableBufferPointer { out in
            for part in parts {
                let precision = part.manifest.precision, stride = precision.width(dimension: d) * precision.bytesPerValue
                part.data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                    Parallel.chunks(part.manifest.rows, minimumPerChunk: 1024) { _, rows in
                        var v = [Float](repeating: 0, count: d)
                        for r in rows {
                            let row = UnsafeRawBufferPointer(rebasing: raw[(part.offset + r * stride)...].prefix(stride))
                            EmbeddingQuantizer.dequantize(row, precision: precision, dimension: d, ranges: part.manifest.ranges, into: &v)
                            var norm: Float = 0
                            for j in 0..<d { norm += v[j] * v[j] }
                            out[part.firstRow + r] = 1 / max(norm.squareRoot(), 1e-12)
                        }
                    }
                }
            }
        }
        cachedInverseNorms = out
        return out
    }

    /// Rows per block: 16k rows of 1024 floats is 64 MB of dequantized vectors at most.
    private var blockRows: Int { max(1, min(16_384, (1 << 24) / max(manifest.dimension, 1))) }

    private func blocks() -> [(part: Int, start: Int, count: Int)] {
        var out: [(Int, Int, Int)] = []
        for (p, part) in parts.enumerated() {
            var start = 0
            while start < part.manifest.rows {
                let count = min(blockRows, part.manifest.rows - start)
                out.append((p, start, count))
                start += count
            }
        }
        return out
    }

    /// Block by block: rows dequantized (and their norms taken) across cores, then one BLAS
    /// product of the queries with the block, then the running top-k. BLAS keeps its own threads:
    /// limiting them is process-wide, and a server searches while it embeds.
    private func exactSearch(_ queries: [[Float]], k: Int) -> [[SearchHit]] {
        let d = manifest.dimension, q = queries.count, blockRows = self.blockRows
        var unitQueries = [Float](repeating: 0, count: q * d)
        for (i, query) in queries.enumerated() {
            let norm = max(query.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot(), 1e-12)
            for j in 0..<d { unitQueries[i * d + j] = Float(Double(query[j]) / norm) }
        }
        let vectors = FloatBuffer(count: blockRows * d), scores = FloatBuffer(count: q * blockRows)
        let inverseNorms = self.inverseNorms()
        var best = [TopK](repeating: TopK(k), count: q)
        for (p, start, count) in blocks() {
            let part = parts[p], precision = part.manifest.precision, ranges = part.manifest.ranges
            let stride = precision.width(dimension: d) * precision.bytesPerValue
            part.data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                // float32 rows are used where they lie (the data offset is a multiple of 64);
                // other precisions are dequantized into the block buffer first.
                let block: UnsafePointer<Float>
                if precision == .float32 {
                    block = UnsafeRawPointer(raw.baseAddress! + part.offset + start * stride).assumingMemoryBound(to: Float.self)
                } else {
                    Parallel.chunks(count, minimumPerChunk: 256) { _, rows in
                        for r in rows {
                            let row = UnsafeRawBufferPointer(rebasing: raw[(part.offset + (start + r) * stride)...].prefix(stride))
                            EmbeddingQuantizer.dequantize(row, precision: precision, dimension: d, ranges: ranges, into: vectors.pointer + r * d)
                        }
                    }
                    block = UnsafePointer(vectors.pointer)
                }
                unitQueries.withUnsafeBufferPointer { u in
                    BLAS.sgemm(transposeA: false, transposeB: true, m: q, n: count, k: d, a: u.baseAddress!, lda: d,
                               b: block, ldb: d, c: scores.pointer, ldc: count)
                }
            }
            let first = part.firstRow + start
            for i in 0..<q {
                for r in 0..<count { best[i].offer(SearchHit(row: first + r, score: scores[i * count + r] * inverseNorms[first + r])) }
            }
        }
        return best.map(\.sorted)
    }

    private func binarySearch(_ queries: [[Float]], k: Int, candidates: Int, rescoring: VectorIndex?) -> [[SearchHit]] {
        let d = manifest.dimension, width = manifest.precision.width(dimension: d)
        let blocks = self.blocks()
        let workers = min(Parallel.coreCount, blocks.count)
        return queries.map { query in
            // Bits as the index stores them (binary is ubinary with its top bit flipped).
            let bits = EmbeddingQuantizer.bytes(query, precision: manifest.precision, ranges: nil)
            let words = width / 8
            let queryWords = (0..<words).map { w in bits[(8 * w)..<(8 * w + 8)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } }
            var nearest = [TopK](repeating: TopK(candidates), count: workers)
            nearest.withUnsafeMutableBufferPointer { nearest in
                Parallel.forEach(blocks.count, workers: workers) { worker, b in
                    let (p, start, count) = blocks[b]
                    let part = parts[p]
                    part.data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                        for r in 0..<count {
                            let base = part.offset + (start + r) * width
                            var distance = 0
                            // Eight bytes at a time, then the rest.
                            for w in 0..<words { distance += (UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: base + 8 * w, as: UInt64.self)) ^ queryWords[w]).nonzeroBitCount }
                            for j in (8 * words)..<width { distance += (raw[base + j] ^ bits[j]).nonzeroBitCount }
                            // Fewer differing bits is better: the heap keeps the highest scores.
                            nearest[worker].offer(SearchHit(row: part.firstRow + start + r, score: -Float(distance)))
                        }
                    }
                }
            }
            var pool = TopK(candidates)
            for heap in nearest { pool.merge(heap) }
            let rows = pool.sorted.map(\.row)
            if let rescoring { return rescoring.cosines(query, rows: rows, k: k) }
            // Without another index: the float query · the candidates' bits, as sentence-transformers does.
            var rescored = TopK(k)
            var unpacked = [Float](repeating: 0, count: d)
            for row in rows {
                vector(row, into: &unpacked)
                var score: Float = 0
                for j in 0..<d { score += query[j] * unpacked[j] }
                rescored.offer(SearchHit(row: row, score: score))
            }
            return rescored.sorted
        }
    }

    /// Row `row` as floats (dequantized; bits as 0/1).
    func vector(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        let part = parts[partIndex(of: row)]
        let precision = part.manifest.precision, stride = precision.width(dimension: manifest.dimension) * precision.bytesPerValue
        part.data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[(part.offset + (row - part.firstRow) * stride)...].prefix(stride))
            EmbeddingQuantizer.dequantize(bytes, precision: precision, dimension: manifest.dimension, ranges: part.manifest.ranges, into: out)
        }
    }

    /// The `k` best of `rows` by cosine with `query`, from this index's vectors.
    func cosines(_ query: [Float], rows: [Int], k: Int) -> [SearchHit] {
        let d = manifest.dimension
        let queryNorm = max(query.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        var best = TopK(k)
        var v = [Float](repeating: 0, count: d)
        for row in rows {
            vector(row, into: &v)
            var dot: Float = 0, norm: Float = 0
            for j in 0..<d { dot += query[j] * v[j]; norm += v[j] * v[j] }
            best.offer(SearchHit(row: row, score: dot / (queryNorm * max(norm.squareRoot(), 1e-12))))
        }
        return best.sorted
    }
}
