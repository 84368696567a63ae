import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

@Suite struct SafeTensorsTests {
    let directory = try! Fixtures.temporaryDirectory("safetensors")

    func write(_ data: Data, _ name: String = "model.safetensors") -> String {
        let path = directory.appendingPathComponent(name).path
        try! data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func expectError(_ data: Data, containing fragment: String) {
        let path = write(data)
        #expect {
            _ = try SafeTensorsFile(path: path)
        } throws: { error in
            let message = String(describing: error)
            return message.contains("model.safetensors") && message.contains(fragment)
        }
    }

    @Test func readsF32F16AndBF16AsFloat32() throws {
        let values: [Float] = [1.5, -2.25, 0.1, 3e4]
        let f16 = values.flatMap { withUnsafeBytes(of: Float16($0).bitPattern.littleEndian, Array.init) }
        let bf16 = values.flatMap { withUnsafeBytes(of: UInt16($0.bitPattern >> 16).littleEndian, Array.init) }
        let path = write(SafeTensorsWriter.data([
            .init(name: "a", shape: [2, 2], floats: values),
            .init(name: "b", dtype: "F16", shape: [4], bytes: f16),
            .init(name: "c", dtype: "BF16", shape: [4], bytes: bf16),
        ]))
        let file = try SafeTensorsFile(path: path)
        #expect(file.tensorNames == ["a", "b", "c"])
        #expect(try file.float32("a").values == values)
        #expect(try file.float32("a").shape == [2, 2])
        #expect(try file.float32("b").values == values.map { Float(Float16($0)) })
        #expect(try file.float32("c").values == values.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) })
    }

    @Test func rejectsFileShorterThanHeaderLength() {
        expectError(Data([1, 2, 3]), containing: "shorter than the 8-byte header length")
    }

    @Test func rejectsHeaderLengthPastEnd() {
        var data = SafeTensorsWriter.data([.init(name: "a", shape: [1], floats: [1])])
        data.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian, Array.init))
        expectError(data, containing: "runs past the end of the file")
    }

    @Test func rejectsTruncatedData() {
        let data = SafeTensorsWriter.data([.init(name: "a", shape: [4], floats: [1, 2, 3, 4])])
        expectError(data.dropLast(5), containing: "run past the data section")
    }

    @Test func rejectsOverlappingTensors() {
        let data = SafeTensorsWriter.data([.init(name: "a", shape: [2], floats: [1, 2]), .init(name: "b", shape: [2], floats: [3, 4])]) { name, entry in
            if name == "b" { entry["data_offsets"] = [4, 12] }
        }
        expectError(data, containing: "overlap")
    }

    @Test func rejectsShapeThatDoesNotFitOffsets() {
        let data = SafeTensorsWriter.data([.init(name: "a", shape: [2], floats: [1, 2])]) { _, entry in entry["shape"] = [3] }
        expectError(data, containing: "needs 12 bytes but data_offsets span 8")
    }

    @Test func rejectsInvalidHeaderJSON() {
        var data = Data()
        withUnsafeBytes(of: UInt64(8).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array("{notjson".utf8))
        expectError(data, containing: "header is not valid JSON")
    }

    @Test func rejectsUnknownDType() {
        let data = SafeTensorsWriter.data([.init(name: "a", shape: [2], floats: [1, 2])]) { _, entry in entry["dtype"] = "F128" }
        expectError(data, containing: "unknown dtype")
    }

    @Test func integerTensorsAreNotWeights() throws {
        let path = write(SafeTensorsWriter.data([.init(name: "ids", dtype: "I32", shape: [1], bytes: [1, 0, 0, 0])]))
        #expect(throws: UnmaskError.unsupportedDType(file: "model.safetensors", name: "ids", dtype: "I32")) {
            _ = try SafeTensorsFile(path: path).float32("ids")
        }
    }

    @Test func missingFileIsNamed() {
        #expect(throws: UnmaskError.fileNotFound(path: "/nonexistent/model.safetensors", what: "weights file")) {
            _ = try SafeTensorsFile(path: "/nonexistent/model.safetensors")
        }
    }
}
