import ArgumentParser
import Foundation
import Unmask

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Print token ids, as Hugging Face's tokenizer(text).input_ids.")

    @Option(help: "Model folder holding tokenizer.json.")
    var model: String

    @Option(help: "JSONL with {\"text\"} a line, or a .txt file with one text a line; - for stdin.")
    var input: String

    @Option(help: "Output file (default: standard output).")
    var output: String?

    @Flag(help: "Do not add the post-processor's special tokens (BOS/EOS).")
    var noSpecialTokens = false

    func run() throws {
        try reportingErrors {
            let inputs = try TextInputs.read(path: input)
            let tokenizer = try Checkpoint.loadTokenizer(directory: model)
            var out = ""
            for input in inputs {
                let ids = tokenizer.encode(input.text, addSpecialTokens: !noSpecialTokens)
                out += "{\"ids\": [" + ids.map(String.init).joined(separator: ", ") + "]}\n"
            }
            try writeOutput(Data(out.utf8), to: output)
        }
    }
}
