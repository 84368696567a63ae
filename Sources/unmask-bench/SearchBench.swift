import Foundation
import Unmask
import UnmaskKernels

/// `unmask-bench --search yes [--rows 1000000] [--dimension 576] [--queries 100] [--k 10] [--folder DIR]`:
/// writes synthetic corpora through `unmask embed`'s own pipeline (CorpusJob) as float32, int8 and
/// ubinary indexes, then measures index size, load time, query latency and recall@k of the
/// quantized paths against exact float32 search.
enum SearchBench {
    /// Vectors around 1,000 Gaussian cluster centres, a function of the record's text (its row number).
    final class SyntheticEmbedder: TextEmbedder, @unchecked Sendable {
        let dimension: Int
        let centres: [[Float]]
        var label: String { "synthetic clusters" }

        init(dimension: Int) {
            self.dimension = dimension
            var random = SplitMix64(seed: 7)
            centres = (0..<1000).map { _ in (0..<dimension).map { _ in SearchBench.gaussian(&random) } }
        }

        func vector(seed: UInt64) -> [Float] {
            var random = SplitMix64(seed: SplitMix64.derive(1, seed))
            let centre = centres[Int(random.below(UInt64(centres.count)))]
            return centre.map { $0 + 0.8 * SearchBench.gaussian(&random) }
        }

        func encode(_ inputs: [EncoderInput], progress: ((Int, Int) -> Void)?) throws -> [[Float]] {
            inputs.map { vector(seed: UInt64($0.text)!) }
        }
    }

    /// Box–Muller from two uniform draws.
    static func gaussian(_ random: inout SplitMix64) -> Float {
        let u = 1 - random.unit(), v = random.unit()
        return Float((-2 * Foundation.log(u)).squareRoot() * cos(2 * .pi * v))
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func rows(arguments: Arguments) throws -> [(String, String)] {
        let count = arguments.int("--rows", 1_000_000), dimension = arguments.int("--dimension", 576)
        let queryCount = arguments.int("--queries", 100), k = arguments.int("--k", 10)
        let folder = arguments.string("--folder") ?? NSTemporaryDirectory() + "unmask-search-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { if arguments.string("--folder") == nil { try? FileManager.default.removeItem(atPath: folder) } }
        let input = folder + "/rows.txt"
        try Data(((0..<count).map(String.init).joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: input))
        let embedder = SyntheticEmbedder(dimension: dimension)
        var out: [(String, String)] = [("corpus", "\(count) × \(dimension) synthetic vectors (1,000 Gaussian clusters, σ 0.8 around unit-variance centres)")]
        var indexes: [EmbeddingPrecision: VectorIndex] = [:]
        for precision in [EmbeddingPrecision.float32, .int8, .ubinary] {
            var options = CorpusJobOptions(input: input)
            options.format = .npy
            options.precision = precision
            options.window = 4096
            options.output = folder + "/\(precision.rawValue).npy"
            let write = try seconds { try CorpusJob(options: options).run(embedder: embedder, identity: "synthetic") }
            let size = (try FileManager.default.attributesOfItem(atPath: options.output!)[.size] as? NSNumber)?.intValue ?? 0
            var index: VectorIndex!
            let load = try seconds { index = try VectorIndex(path: options.output!) }
            indexes[precision] = index
            out.append(("\(precision.rawValue): index file", String(format: "%.0f MB (written by the embed pipeline in %.1f s, opened in %.3f s)", Double(size) / 1e6, write, load)))
        }
        var random = SplitMix64(seed: 99)
        let queries = (0..<queryCount).map { _ in embedder.vector(seed: random.next()) }
        var truth: [[Int]] = []
        for precision in [EmbeddingPrecision.float32, .int8, .ubinary] {
            let index = indexes[precision]!
            _ = try index.search([queries[0]], k: k)  // pages in
            var single = Double.infinity
            for query in queries.prefix(3) { single = min(single, try seconds { _ = try index.search([query], k: k) }) }
            var found: [[SearchHit]] = []
            let batch = try seconds { found = try index.search(queries, k: k) }
            let rows = found.map { $0.map(\.row) }
            if precision == .float32 { truth = rows }
            let recall = zip(rows, truth).reduce(0) { $0 + Set($1.0).intersection($1.1).count } 
            let name = precision == .ubinary ? "ubinary (Hamming top \(4 * k), rescored by query · bits)" : "\(precision.rawValue) (exact cosine)"
            out.append((name + ": 1 query", String(format: "%.1f ms", single * 1000)))
            out.append((name + ": \(queryCount) queries", String(format: "%.2f s (%.1f ms/query), recall@%d vs float32 exact %.3f", batch, batch * 1000 / Double(queryCount), k,
                                                                 Double(recall) / Double(queryCount * k))))
        }
        // The large-index recipe: binary in memory, candidates rescored from the int8 index on disk.
        for multiplier in [4, 16, 64] {
            var found: [[SearchHit]] = []
            let batch = try seconds { found = try indexes[.ubinary]!.search(queries, k: k, rescoreMultiplier: multiplier, rescoring: indexes[.int8]!) }
            let recall = zip(found.map { $0.map(\.row) }, truth).reduce(0) { $0 + Set($1.0).intersection($1.1).count }
            out.append(("ubinary (Hamming top \(multiplier * k), rescored from int8): \(queryCount) queries",
                        String(format: "%.2f s (%.1f ms/query), recall@%d vs float32 exact %.3f", batch, batch * 1000 / Double(queryCount), k, Double(recall) / Double(queryCount * k))))
        }
        out.append(("peak RSS", String(format: "%.0f MB (mapped index pages count once touched)", Double(Bench.peakResidentBytes()) / 1e6)))
        return out
    }
}
