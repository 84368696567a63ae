import ArgumentParser
import Foundation
import Unmask

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Describe a model folder: architecture, size, dtypes, tokenizer.")

    @Option(help: "Model folder.")
    var model: String

    func run() throws {
        try reportingErrors {
            let checkpoint = try Checkpoint(path: model)
            let c = checkpoint.config
            // What the config claims must be what the weights hold, or the description would mislead.
            try DecoderWeights.checkShapes(checkpoint.tensors, config: c, configName: checkpoint.folder.map { $0.appendingPathComponent("config.json").path } ?? "GGUF metadata")
            var parameters = 0
            var dtypes: [String: Int] = [:]
            for name in checkpoint.tensors.tensorNames {
                guard let info = checkpoint.tensors.info(name) else { continue }
                parameters += info.shape.reduce(1, *)
                dtypes[info.dtype.rawValue, default: 0] += 1
            }
            let tokenizer = try checkpoint.loadTokenizer()
            func special(_ token: String?, _ id: Int?) -> String { token.map { "\($0) (\(id.map(String.init) ?? "?"))" } ?? "none" }
            let rope: String
            switch c.ropeScaling {
            case .none: rope = "none"
            case let .linear(factor): rope = "linear ×\(factor)"
            case let .llama3(factor, low, high, original): rope = "llama3 factor \(factor), low \(low), high \(high), original \(original)"
            }
            try emit("""
            architecture:   \(c.modelType)\(c.nameOrPath.isEmpty ? "" : " (\(c.nameOrPath))")
            parameters:     \(parameters.formatted()) (\(String(format: "%.1f", Double(parameters) / 1e6))M)
            dtypes:         \(dtypes.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
            layers:         \(c.layerCount), hidden \(c.hiddenSize), intermediate \(c.intermediateSize)
            attention:      \(c.headCount) heads, \(c.kvHeadCount) kv heads, head dim \(c.headDim)\(c.attentionBias ? ", q/k/v bias" : "")\(c.slidingWindow.map { ", sliding window \($0)" } ?? "")
            rope:           theta \(c.ropeTheta), scaling \(rope)
            embeddings:     vocab \(c.vocabularySize), \(c.tieWordEmbeddings ? "tied" : "untied") output
            tokenizer:      \(tokenizer.kind), \(tokenizer.vocabularySize) tokens, adds \([tokenizer.addsBOS ? "BOS" : nil, tokenizer.addsEOS ? "EOS" : nil].compactMap { $0 }.joined(separator: "+").nonEmpty ?? "no special tokens")
            special tokens: bos \(special(tokenizer.bosToken, tokenizer.bosTokenId)), eos \(special(tokenizer.eosToken, tokenizer.eosTokenId)), pad \(special(tokenizer.padToken, tokenizer.padTokenId)), unk \(special(tokenizer.unkToken, tokenizer.unkTokenId))
            """)
        }
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
