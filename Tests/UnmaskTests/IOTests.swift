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
}
