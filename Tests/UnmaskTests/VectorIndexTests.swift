import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// Exact and binary + rescore search over corpus-run indexes, against brute force.
@Suite struct VectorIndexTests {
    /// A corpus of 300 records with clustered vectors, embedded into `precision` (sharded when `shards` > 1).
    static func index(_ precision: EmbeddingPrecision, shards: Int = 1, in folder: URL) throws -> (String, [[Float]], WindowRecordingEmbedder) {
        let input = try CorpusTests.write(CorpusTests.corpus(340), "in.jsonl", in: folder)
        var options = CorpusJobOptions(input: input)
        options.format = .npy
        options.precision = precision
        options.window = 32
        options.keep = ["lang"]
        options.output = folder.appendingPathComponent("index-\(precision.rawValue).npy").path
        let embedder = WindowRecordingEmbedder()
        for shard in 0..<shards {
            options.shard = shards > 1 ? try CorpusShard(index: shard, count: shards) : nil
            _ = try CorpusJob(options: options).run(embedder: embedder, identity: "test")
        }
        let reader = try CorpusReader(path: input)
        var vectors: [[Float]] = []
        let reference = WindowRecordingEmbedder()
        while let record = try reader.next() { vectors.append(try reference.encode([record.input], progress: nil)[0]) }
        return (options.output!, vectors, embedder)
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for i in a.indices { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i] }
        return dot / max(na.squareRoot() * nb.squareRoot(), 1e-12)
    }

    @Test func exactSearchIsBruteForceCosineOverEveryShard() throws {
        let folder = try Fixtures.temporaryDirectory("index-exact")
        let (path, vectors, _) = try Self.index(.float32, shards: 3, in: folder)
        // The folder holds only shards: they are the index, in input order.
        let index = try VectorIndex(path: (path as NSString).deletingLastPathComponent)
        #expect(index.parts.count == 3 && index.rows == vectors.count)
        let queries = [vectors[17], vectors[200].map { -$0 }, vectors[5].enumerated().map { $0.element + Float($0.offset % 3) * 0.1 }]
        let hits = try index.search(queries, k: 5)
        for (query, found) in zip(queries, hits) {
            let expected = vectors.indices.map { SearchHit(row: $0, score: Self.cosine(query, vectors[$0])) }.sorted(by: >).prefix(5)
            #expect(found.map(\.row) == expected.map(\.row))
            for (a, b) in zip(found, expected) { #expect(abs(a.score - b.score) <= 1e-5) }
        }
        #expect(hits[0][0].row == 17 || Self.cosine(vectors[hits[0][0].row], vectors[17]) >= 0.99999)
        // Rows map back to the records' ids and kept fields.
        let record = try JSONSerialization.jsonObject(with: Data(try index.record(hits[0][0].row).utf8)) as! [String: Any]
        #expect((record["id"] as? String)?.hasPrefix("doc-") == true && record.keys.contains("lang"))
    }

    @Test func int8AndFloat16FindWhatFloat32Finds() throws {
        let folder = try Fixtures.temporaryDirectory("index-quantized")
        let (path32, vectors, _) = try Self.index(.float32, in: folder)
        let exact = try VectorIndex(path: path32)
        let queries = Array(vectors[40..<60])
        let truth = try exact.search(queries, k: 1).map { $0[0].row }
        for precision in [EmbeddingPrecision.float16, .int8, .uint8] {
            let (path, _, _) = try Self.index(precision, in: folder)
            let found = try VectorIndex(path: path).search(queries, k: 1).map { $0[0].row }
            #expect(zip(found, truth).filter { $0 == $1 }.count >= 19, "\(precision)")
        }
    }

    @Test func binarySearchRescoresTheHammingNearestAsSentenceTransformersDoes() throws {
        let folder = try Fixtures.temporaryDirectory("index-binary")
        for precision in [EmbeddingPrecision.binary, .ubinary] {
            let (path, vectors, _) = try Self.index(precision, in: folder)
            let index = try VectorIndex(path: path)
            let query = vectors[123]
            let k = 4, multiplier = 3
            let hits = try index.search([query], k: k, rescoreMultiplier: multiplier)[0]
            // Brute force: Hamming distance on the bits (> 0), the k·m nearest (earlier rows first on
            // ties), then query · bits.
            let bits = vectors.map { $0.map { $0 > 0 ? Float(1) : 0 } }
            let queryBits = query.map { $0 > 0 }
            let distance = bits.map { row in zip(row, queryBits).filter { ($0 == 1) != $1 }.count }
            let candidates = vectors.indices.sorted { (distance[$0], $0) < (distance[$1], $1) }.prefix(k * multiplier)
            let expected = candidates.map { row in SearchHit(row: row, score: zip(query, bits[row]).reduce(0) { $0 + $1.0 * $1.1 }) }.sorted(by: >).prefix(k)
            #expect(hits.map(\.row) == expected.map(\.row), "\(precision)")
            for (a, b) in zip(hits, expected) { #expect(abs(a.score - b.score) <= 1e-4) }
        }
    }

    @Test func binaryCandidatesCanBeRescoredFromAnotherIndexOfTheCorpus() throws {
        let folder = try Fixtures.temporaryDirectory("index-rescore")
        let (binaryPath, vectors, _) = try Self.index(.ubinary, in: folder)
        let (floatPath, _, _) = try Self.index(.float32, in: folder)
        let binary = try VectorIndex(path: binaryPath), exact = try VectorIndex(path: floatPath)
        let query = vectors[77].enumerated().map { $0.element + Float($0.offset % 5) * 0.05 }
        let k = 5, multiplier = 4
        let hits = try binary.search([query], k: k, rescoreMultiplier: multiplier, rescoring: exact)[0]
        let queryBits = query.map { $0 > 0 }
        let distance = vectors.map { row in zip(row, queryBits).filter { ($0 > 0) != $1 }.count }
        let candidates = vectors.indices.sorted { (distance[$0], $0) < (distance[$1], $1) }.prefix(k * multiplier)
        let expected = candidates.map { SearchHit(row: $0, score: Self.cosine(query, vectors[$0])) }.sorted(by: >).prefix(k)
        #expect(hits.map(\.row) == expected.map(\.row))
        for (a, b) in zip(hits, expected) { #expect(abs(a.score - b.score) <= 1e-5) }
        // Only a float/int8 index of the same corpus can rescore a binary one.
        #expect(throws: UnmaskError.self) { try exact.search([query], k: k, rescoring: binary) }
    }

    @Test func badIndexesAndQueriesAreNamed() throws {
        let folder = try Fixtures.temporaryDirectory("index-bad")
        #expect(throws: UnmaskError.self) { try VectorIndex(path: folder.path) }
        let (path, _, _) = try Self.index(.float32, in: folder)
        let index = try VectorIndex(path: path)
        #expect { try index.search([[1, 2, 3]], k: 3) } throws: { ($0 as? UnmaskError)?.description.contains("16-dimensional") == true }
        // A truncated vectors file is caught before any search.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 10).write(to: URL(fileURLWithPath: path))
        #expect { try VectorIndex(path: path) } throws: { ($0 as? UnmaskError)?.description.contains("bytes") == true }
    }
}
