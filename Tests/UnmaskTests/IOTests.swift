import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

@Suite struct IOTests {
    func file(_ name: String, _ content: String) throws -> String {
        let url = try Fixtures.temporaryDirectory("inputs").appendingPathComponent(name)
        try Data(content.utf8).write(to: url)
        return url.path
    }

    @Test func readsJSONLinesWithInstructions() throws {
        let path = try file("in.jsonl", "{\"text\": \"a\"}\n\n{\"text\": \"b\", \"instruction\": \"own\"}\n{\"text\": \"c\", \"instruction\": null}\n")
        let inputs = try TextInputs.read(path: path, defaultInstruction: "default")
        #expect(inputs == [EncoderInput("a", instruction: "default"), EncoderInput("b", instruction: "own"), EncoderInput("c", instruction: "default")])
    }

    @Test func readsTextLines() throws {
        let path = try file("in.txt", "first\r\nsecond\n\nfourth\n")
        #expect(try TextInputs.read(path: path).map(\.text) == ["first", "second", "", "fourth"])
    }

    @Test func badInputsNameTheLine() throws {
        let invalid = try file("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n")
        #expect(throws: UnmaskError.invalidInput(source: invalid + ":2", reason: "invalid JSON (expected an object like {\"text\": \"...\"})")) {
            _ = try TextInputs.read(path: invalid)
        }
        let wrongType = try file("bad.jsonl", "{\"text\": 3}\n")
        #expect(throws: UnmaskError.invalidInput(source: wrongType + ":1", reason: "field 'text': expected a string")) {
            _ = try TextInputs.read(path: wrongType)
        }
        let empty = try file("empty.jsonl", "")
        #expect(throws: UnmaskError.invalidInput(source: empty, reason: "no texts: the input is empty")) {
            _ = try TextInputs.read(path: empty)
        }
    }

    @Test func npyHasNumPysLayout() {
        let data = EmbeddingWriters.npy([[1, 2, 3], [4, 5, 6]])
        #expect(Array(data.prefix(8)) == [0x93] + Array("NUMPY".utf8) + [1, 0])
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") && header.hasSuffix("\n"))
        #expect(data.count == 10 + headerLength + 24)
        let last = data.suffix(4).withUnsafeBytes { $0.loadUnaligned(as: Float.self) }
        #expect(last == 6)
    }

    @Test func jsonLinesRoundTrip() throws {
        let embeddings: [[Float]] = [[0.1, -2.5e-8], [3, 4]]
        let lines = String(decoding: EmbeddingWriters.jsonLines(embeddings), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        let parsed = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: [Double]] }
        #expect(parsed.map { $0["embedding"]!.map(Float.init) } == embeddings)
    }
}
