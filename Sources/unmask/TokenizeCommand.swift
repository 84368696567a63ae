import ArgumentParser
import Foundation
import Unmask

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Print token ids, as Hugging Face's tokenizer(text).input_ids.")

    @Option(help: "Model: a folder holding tokenizer.json, a .gguf file, or an installed model's name.")
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
            // A folder needs only its tokenizer files; a GGUF file or a name goes through the checkpoint.
            let path = try KnownModels.resolve(model)
            var isDirectory: ObjCBool = false
            let isFolder = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            let tokenizer = isFolder ? try Checkpoint.loadTokenizer(directory: path) : try Checkpoint(path: path).loadTokenizer()
            var out = ""
            for input in inputs {
                let ids = tokenizer.encode(input.text, addSpecialTokens: !noSpecialTokens)
                out += "{\"ids\": [" + ids.map(String.init).joined(separator: ", ") + "]}\n"
            }
            try writeOutput(Data(out.utf8), to: output)
        }
    }
}
