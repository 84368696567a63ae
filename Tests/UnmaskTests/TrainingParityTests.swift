import Foundation
import XCTest
import UnmaskTestSupport
@testable import Unmask
import UnmaskKernels

/// Loss and every LoRA gradient against PyTorch + PEFT: the tiny Llama fixture (llm2vec on
/// transformers 4.44.2, scripts/make_training_fixtures.py) and the tiny Gemma 3 and Qwen3 fixtures
/// with their sliding windows (transformers 4.57.1, scripts/make_training_fixtures_new_arch.py).
final class TrainingParityTests: XCTestCase {
    struct Batches: Decodable {
        struct MNTP: Decodable { let rows: [[Int32]]; let labels: [[Int32]]; let loss: Double }
        struct Contrastive: Decodable { let queries: [[Int32]]; let documents: [[Int32]]; let loss: Double }
        let rank: Int
        let alpha: Float
        let pad: Int32
        let scale: Float
        let mntp: MNTP
        let contrastive: Contrastive
    }

    /// (model fixture, folder of its training fixture under Tests/Fixtures/training).
    static let setups = [("llama2-bf16", ""), ("gemma3-tiny-f32", "gemma3-tiny-f32"), ("qwen3-tiny-bf16", "qwen3-tiny-bf16")]

    func load(_ model: String, _ folder: String) throws -> (LoRADecoder, Batches) {
        let batches = try JSONDecoder().decode(Batches.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("training", folder, "batches.json"))))
        let loaded = try Checkpoint(path: Fixtures.path("models", model)).loadModel(lmHead: true)
        let decoder = LoRADecoder(model: loaded, rank: batches.rank, alpha: batches.alpha)
        try decoder.parameters.load(from: SafeTensorsFile(path: Fixtures.path("training", folder, "lora.safetensors")))
        return (decoder, batches)
    }

    /// Worst relative error ‖g − g_ref‖ / ‖g_ref‖ over every LoRA tensor; fails above 1e-3.
    func compare(_ gradients: LoRATensors, reference file: String, model: DecoderModel) throws -> (Double, String) {
        let reference = try SafeTensorsFile(path: file)
        var worst = (0.0, "")
        for l in 0..<model.config.layerCount {
            for p in LoRAProjection.allCases {
                for isA in [true, false] {
                    let name = LoRATensors.name(layer: l, projection: p, isA: isA)
                    let expected = try reference.float32(name)
                    let actual = isA ? gradients[l, p].a : gradients[l, p].b
                    XCTAssertEqual(expected.shape.reduce(1, *), actual.count, name)
                    var difference = 0.0, norm = 0.0
                    for i in 0..<actual.count {
                        let e = Double(expected.pointer[i]), a = Double(actual[i])
                        difference += (a - e) * (a - e)
                        norm += e * e
                    }
                    XCTAssertGreaterThan(norm, 0, name)
                    let relative = (difference / norm).squareRoot()
                    XCTAssertLessThanOrEqual(relative, 1e-3, name)
                    if relative > worst.0 { worst = (relative, name) }
                }
            }
        }
        return worst
    }

    func testMNTPLossAndGradientsMatchPEFT() throws {
        for (model, folder) in Self.setups {
            let (decoder, batches) = try load(model, folder)
            let batch = TokenBatch(leftPadding: batches.mntp.rows, padding: batches.pad)
            var labels = [Int32](repeating: -100, count: batch.ids.count)
            for (b, row) in batches.mntp.labels.enumerated() {
                let start = batch.length - row.count
                for (j, label) in row.enumerated() { labels[b * batch.length + start + j] = label }
            }
            let gradients = LoRATensors(model: decoder.model, rank: decoder.rank)
            let loss = decoder.mntp(batch, labels: labels, into: gradients)
            let lossError = abs(Double(loss) - batches.mntp.loss) / abs(batches.mntp.loss)
            XCTAssertLessThanOrEqual(lossError, 1e-3)
            let worst = try compare(gradients, reference: Fixtures.path("training", folder, "mntp_gradients.safetensors"), model: decoder.model)
            print("\(model) MNTP loss \(loss) (reference \(batches.mntp.loss), relative error \(lossError)); worst gradient relative error \(worst.0) at \(worst.1)")
        }
    }

    func testContrastiveLossAndGradientsMatchPEFT() throws {
        for (model, folder) in Self.setups {
            let (decoder, batches) = try load(model, folder)
            let queries = TokenBatch(leftPadding: batches.contrastive.queries, padding: batches.pad)
            let documents = TokenBatch(leftPadding: batches.contrastive.documents, padding: batches.pad)
            let gradients = LoRATensors(model: decoder.model, rank: decoder.rank)
            let loss = decoder.contrastive(queries: queries, documents: documents, scale: batches.scale, into: gradients)
            let lossError = abs(Double(loss) - batches.contrastive.loss) / abs(batches.contrastive.loss)
            XCTAssertLessThanOrEqual(lossError, 1e-3)
            let worst = try compare(gradients, reference: Fixtures.path("training", folder, "contrastive_gradients.safetensors"), model: decoder.model)
            print("\(model) contrastive loss \(loss) (reference \(batches.contrastive.loss), relative error \(lossError)); worst gradient relative error \(worst.0) at \(worst.1)")
        }
    }

    /// Gradients add up across calls (micro-batch accumulation) and B = 0 gives the base model's output.
    func testZeroBMatchesBaseModelAndGradientsAccumulate() throws {
        let model = try Checkpoint(path: Fixtures.path("models", "llama2-bf16")).loadModel(lmHead: true)
        let decoder = LoRADecoder(model: model, rank: 4, alpha: 8, seed: 7)
        let batch = TokenBatch(leftPadding: [[5, 9, 17, 33], [8, 4]], padding: 0)
        let tape = decoder.forward(batch, mode: .bidirectional)
        let base = model.forward(batch, mode: .bidirectional, workspace: DecoderWorkspace())
        for t in [2, 3, 4 + 2, 4 + 3] {
            for j in 0..<model.config.hiddenSize {
                XCTAssertEqual(tape.output[t * model.config.hiddenSize + j], base[t * model.config.hiddenSize + j], accuracy: 1e-4)
            }
        }
        var labels = [Int32](repeating: -100, count: batch.ids.count)
        labels[3] = 17; labels[7] = 4
        let once = LoRATensors(model: model, rank: 4), twice = LoRATensors(model: model, rank: 4)
        decoder.mntp(batch, labels: labels, into: once)
        decoder.mntp(batch, labels: labels, into: twice)
        decoder.mntp(batch, labels: labels, into: twice)
        let a = once[1, .v].b, b = twice[1, .v].b
        var norm: Float = 0
        for i in 0..<a.count { XCTAssertEqual(2 * a[i], b[i], accuracy: 1e-5 + 1e-4 * abs(b[i])); norm += a[i] * a[i] }
        XCTAssertGreaterThan(norm, 0)
    }
}
