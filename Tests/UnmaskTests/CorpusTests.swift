import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// A deterministic embedder for corpus runs: each text's vector is a function of its words; it
/// records the windows it was given and can fail after a number of calls (a crash mid-run).
final class WindowRecordingEmbedder: TextEmbedder, @unchecked Sendable {
    let dimension = 16
    var label: String { "windows" }
    var windows: [Int] = []
    var failAfter: Int?

    func encode(_ inputs: [EncoderInput], progress: ((Int, Int) -> Void)?) throws -> [[Float]] {
        if let failAfter, windows.count >= failAfter { throw UnmaskError.invalidInput(source: "test", reason: "killed") }
        windows.append(inputs.count)
        return inputs.map { input in
            var v = [Float](repeating: 0, count: dimension)
            for (i, byte) in (input.instruction + "|" + input.text).utf8.enumerated() { v[(i * 7 + Int(byte)) % dimension] += Float(byte % 13) / 13 - 0.4 }
            return v
        }
    }
}

@Suite struct CorpusTests {
    static func write(_ text: String, _ name: String, in folder: URL) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func corpus(_ count: Int) -> String {
        (0..<count).map { i in
            let words = (0...(i * 7 % 11)).map { "w\(($0 * 31 + i) % 17)" }.joined(separator: " ")
            return i % 9 == 4 ? "\n" : "{\"id\": \"doc-\(i)\", \"text\": \"\(words)\", \"lang\": \(i % 2 == 0 ? "\"en\"" : "null")}\n"
        }.joined()
    }

    static func run(_ options: CorpusJobOptions, embedder: TextEmbedder = WindowRecordingEmbedder()) throws -> Int {
        try CorpusJob(options: options).run(embedder: embedder, identity: "test-model")
    }

    @Test func linesAreReadAcrossBlocksWithCRLFAndWithoutAFinalNewline() throws {
        let folder = try Fixtures.temporaryDirectory("corpus-lines")
        let path = try Self.write("first\r\nsecond line\n\nlast without newline", "in.txt", in: folder)
        let reader = try LineReader(path: path, blockSize: 3)
        var lines: [String] = []
        while let line = try reader.next() { lines.append(String(decoding: line, as: UTF8.self)) }
        #expect(lines == ["first", "second line", "", "last without newline"])
        #expect(reader.lineNumber == 4)
    }

    @Test func recordsCarryTheirIdsAndKeptFields() throws {
        let folder = try Fixtures.temporaryDirectory("corpus-records")
        let jsonl = try Self.write("""
            {"id": "a/1", "text": "one", "meta": {"k": [1, 2]}}

            {"text": "two", "instruction": "Find"}
            {"id": 7.5, "text": "three", "meta": null}
            """, "in.jsonl", in: folder)
        let reader = try CorpusReader(path: jsonl, keep: ["meta"], defaultInstruction: "Default")
        var records: [CorpusRecord] = []
        while let record = try reader.next() { records.append(record) }
        #expect(records.map(\.id) == ["\"a/1\"", "3", "7.5"])
        #expect(records.map(\.line) == [1, 3, 4] && records.map(\.index) == [0, 1, 2])
        #expect(records.map(\.kept) == [["{\"k\":[1,2]}"], ["null"], ["null"]])
        #expect(records.map(\.input.instruction) == ["Default", "Find", "Default"])
        let text = try Self.write("x\n\ny\n", "in.txt", in: folder)
        let plain = try CorpusReader(path: text)
        var ids: [String] = []
        while let record = try plain.next() { ids.append(record.id) }
        #expect(ids == ["1", "2", "3"])
        // A bad line is named before any model would load.
        let bad = try Self.write("{\"text\": \"ok\"}\n{\"txt\": 1}\n", "bad.jsonl", in: folder)
        #expect(throws: UnmaskError.invalidInput(source: "\(bad):2", reason: "field 'text': expected a string")) { try CorpusScan(path: bad) }
    }

    @Test func shardsTileTheInputInWholeWindows() throws {
        for total in [1, 5, 64, 1000, 1025] {
            for window in [1, 7, 64] {
                for count in [1, 2, 3, 4, 9] {
                    let ranges = try (0..<count).map { try CorpusShard(index: $0, count: count).range(records: total, window: window) }
                    #expect(ranges.first!.lowerBound == 0 && ranges.last!.upperBound == total)
                    for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
                    #expect(ranges.allSatisfy { $0.lowerBound % window == 0 })
                }
            }
        }
        #expect(throws: UnmaskError.self) { try CorpusShard(index: 4, count: 4) }
        let shard = CorpusPaths(output: "out/run.jsonl", format: .jsonl, shard: try CorpusShard(index: 2, count: 4))
        #expect(shard.data == "out/run-00002-of-00004.jsonl" && shard.manifest == "out/run-00002-of-00004.jsonl.manifest.json")
        #expect(CorpusPaths(output: "out/run.jsonl", format: .jsonl, shard: nil).manifest == nil)
        let npy = CorpusPaths(output: "v.npy", format: .npy, shard: nil)
        #expect(npy.data == "v.npy" && npy.ids == "v.ids.jsonl" && npy.manifest == "v.manifest.json")
    }

    @Test func precisionsMatchSentenceTransformersQuantizeEmbeddings() throws {
        let fixture = try Fixtures.json("corpus", "quantization.json") as! [String: Any]
        func matrix(_ key: String) -> [[Float]] { (fixture[key] as! [[Double]]).map { $0.map(Float.init) } }
        let embeddings = matrix("embeddings")
        let ranges = try QuantizationRanges(calibration: matrix("calibration"))
        for precision in [EmbeddingPrecision.float32, .int8, .uint8, .binary, .ubinary] {
            // Compared as Float: the JSON parser need not round-trip the float32 values' doubles.
            let expected = (fixture[precision.rawValue] as! [[Double]]).map { $0.map(Float.init) }
            let got = embeddings.map { EmbeddingQuantizer.values($0, precision: precision, ranges: ranges).map(Float.init) }
            #expect(got == expected, "\(precision)")
            // The stored bytes are the same values.
            for (vector, values) in zip(embeddings, expected) {
                let bytes = EmbeddingQuantizer.bytes(vector, precision: precision, ranges: ranges)
                #expect(bytes.count == precision.width(dimension: vector.count) * precision.bytesPerValue)
                if precision.bytesPerValue == 1 {
                    let signed = precision == .int8 || precision == .binary
                    #expect(bytes.map { signed ? Float(Int8(bitPattern: $0)) : Float($0) } == values, "\(precision) bytes")
                }
            }
        }
        // Dequantized int8 lands within one step of the value; bits come back as 0/1.
        let vector = embeddings[1]
        var back = [Float](repeating: 0, count: vector.count)
        EmbeddingQuantizer.bytes(vector, precision: .int8, ranges: ranges).withUnsafeBytes {
            EmbeddingQuantizer.dequantize($0, precision: .int8, dimension: vector.count, ranges: ranges, into: &back)
        }
        for d in vector.indices { #expect(abs(back[d] - vector[d]) <= ranges.steps[d] * 1.001) }
        EmbeddingQuantizer.bytes(vector, precision: .binary, ranges: nil).withUnsafeBytes {
            EmbeddingQuantizer.dequantize($0, precision: .binary, dimension: vector.count, ranges: nil, into: &back)
        }
        #expect(back == vector.map { $0 > 0 ? 1 : 0 })
        // float16 rounds to the nearest half.
        #expect(EmbeddingQuantizer.values([1.0 / 3], precision: .float16, ranges: nil) == [Double(Float(Float16(1.0 / 3)))])
    }

    @Test func npyHeadersRoundTripAndPadTo64() throws {
        let header = NPYHeader.bytes(descriptor: "|i1", rows: 1_000_000, columns: 72)
        #expect(header.count % 64 == 0)
        let parsed = try NPYHeader.parse(Data(header), path: "x.npy")
        #expect(parsed.descriptor == "|i1" && parsed.rows == 1_000_000 && parsed.columns == 72 && parsed.offset == header.count)
        #expect(throws: UnmaskError.self) { try NPYHeader.parse(Data("not numpy".utf8), path: "x.npy") }
    }

    @Test func aRunStreamsWindowsAndWritesEveryRecordInInputOrder() throws {
        let folder = try Fixtures.temporaryDirectory("corpus-stream")
        let input = try Self.write(Self.corpus(50), "in.jsonl", in: folder)
        var options = CorpusJobOptions(input: input)
        options.output = folder.appendingPathComponent("out.jsonl").path
        options.window = 8
        options.keep = ["lang"]
        let embedder = WindowRecordingEmbedder()
        #expect(try Self.run(options, embedder: embedder) == 44)
        #expect(embedder.windows == [8, 8, 8, 8, 8, 4])
        let lines = try String(contentsOfFile: options.output!, encoding: .utf8).split(separator: "\n")
        let reference = WindowRecordingEmbedder()
        let reader = try CorpusReader(path: input, keep: ["lang"])
        var index = 0
        while let record = try reader.next() {
            let object = try JSONSerialization.jsonObject(with: Data(lines[index].utf8)) as! [String: Any]
            #expect(object["id"] as? String == "doc-\(record.line - 1)")
            #expect(object.keys.sorted() == ["embedding", "id", "lang"])
            let expected = try reference.encode([record.input], progress: nil)[0]
            #expect((object["embedding"] as! [Double]).map(Float.init) == expected)
            index += 1
        }
        #expect(index == lines.count)
        // Nothing of the run is left beside the result.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["in.jsonl", "out.jsonl"])
    }

    @Test func anInterruptedRunResumesToTheSameBytesAndRefusesAChangedJob() throws {
        let folder = try Fixtures.temporaryDirectory("corpus-resume")
        let input = try Self.write(Self.corpus(60), "in.jsonl", in: folder)
        for format in CorpusFormat.allCases {
            var options = CorpusJobOptions(input: input)
            options.format = format
            options.window = 5
            options.precision = format == .npy ? .int8 : .float32
            options.calibrationSize = 20
            options.output = folder.appendingPathComponent("whole.\(format.rawValue)").path
            _ = try Self.run(options)
            let whole = CorpusPaths(output: options.output!, format: format, shard: nil)

            options.output = folder.appendingPathComponent("resumed.\(format.rawValue)").path
            let resumed = CorpusPaths(output: options.output!, format: format, shard: nil)
            // Crashes after 3 windows, then (resumed) after 2 more; calibration is one call of a fresh run.
            for (attempt, crashAfter) in [3, 2].enumerated() {
                let failing = WindowRecordingEmbedder()
                options.resume = attempt > 0
                failing.failAfter = crashAfter + (options.precision.needsCalibration && !options.resume ? 1 : 0)
                #expect(throws: UnmaskError.self) { try Self.run(options, embedder: failing) }
                // A kill between a write and its commit leaves bytes past the journal's count.
                let handle = FileHandle(forWritingAtPath: CorpusPaths.partial(resumed.data))!
                try handle.seekToEnd()
                try handle.write(contentsOf: Data("torn write".utf8))
                try handle.close()
            }
            // Without --resume the leftover run is not overwritten.
            options.resume = false
            #expect(throws: UnmaskError.self) { try CorpusJob(options: options) }
            // Another model or input is refused.
            options.resume = true
            #expect(throws: UnmaskError.self) { try CorpusJob(options: options).run(embedder: WindowRecordingEmbedder(), identity: "other-model") }
            let embedder = WindowRecordingEmbedder()
            #expect(try Self.run(options, embedder: embedder) == 53)
            #expect(embedder.windows.count == 11 - 5, "only the uncommitted windows run again")
            for (a, b) in [(whole.data, resumed.data), (whole.ids, resumed.ids)] where a != nil {
                #expect(FileManager.default.contentsEqual(atPath: a!, andPath: b!), "\(format): \(b!)")
            }
            #expect(!FileManager.default.fileExists(atPath: resumed.journal))
            // Rerunning a finished job with --resume does nothing.
            let idle = WindowRecordingEmbedder()
            #expect(try Self.run(options, embedder: idle) == 53 && idle.windows.isEmpty)
        }
        var changed = CorpusJobOptions(input: try Self.write(Self.corpus(61), "in.jsonl", in: folder))
        changed.output = folder.appendingPathComponent("changed.jsonl").path
        changed.window = 5
        let failing = WindowRecordingEmbedder()
        failing.failAfter = 2
        #expect(throws: UnmaskError.self) { try Self.run(changed, embedder: failing) }
        _ = try Self.write(Self.corpus(62), "in.jsonl", in: folder)
        changed.resume = true
        #expect { try Self.run(changed) } throws: { ($0 as? UnmaskError)?.description.contains("the input changed") == true }
    }

    @Test func shardsMergeIntoTheSingleRunsBytes() throws {
        let folder = try Fixtures.temporaryDirectory("corpus-shards")
        let input = try Self.write(Self.corpus(70), "in.jsonl", in: folder)
        for format in CorpusFormat.allCases {
            var options = CorpusJobOptions(input: input)
            options.format = format
            options.window = 4
            options.keep = ["lang"]
            options.precision = format == .npy ? .binary : .int8
            options.output = folder.appendingPathComponent("single.\(format.rawValue)").path
            #expect(try Self.run(options) == 62)
            options.output = folder.appendingPathComponent("sharded-\(format.rawValue).\(format.rawValue)").path
            #expect(throws: UnmaskError.self) { try CorpusMerge.merge(output: options.output!, format: format) }
            for index in [2, 0, 3] {
                options.shard = try CorpusShard(index: index, count: 4)
                _ = try Self.run(options)
            }
            #expect { try CorpusMerge.merge(output: options.output!, format: format) } throws: {
                ($0 as? UnmaskError)?.description.contains("shard 1 is missing") == true
            }
            options.shard = try CorpusShard(index: 1, count: 4)
            _ = try Self.run(options)
            #expect(try CorpusMerge.merge(output: options.output!, format: format) == 62)
            let single = CorpusPaths(output: folder.appendingPathComponent("single.\(format.rawValue)").path, format: format, shard: nil)
            let merged = CorpusPaths(output: options.output!, format: format, shard: nil)
            #expect(FileManager.default.contentsEqual(atPath: single.data, andPath: merged.data), "\(format)")
            if format == .npy {
                #expect(FileManager.default.contentsEqual(atPath: single.ids!, andPath: merged.ids!))
                var a = try CorpusManifest.load(single.manifest!), b = try CorpusManifest.load(merged.manifest!)
                #expect(a.embeddings == "single.npy" && b.embeddings == "sharded-npy.npy")
                (a.embeddings, a.ids) = (b.embeddings, b.ids)
                #expect(a == b)
            }
        }
    }
}
