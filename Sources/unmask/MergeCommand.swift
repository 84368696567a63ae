import ArgumentParser
import Foundation
import Unmask

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge PEFT LoRA adapters into a model and write the merged checkpoint in the model's format.",
        discussion: """
            A Hugging Face folder gives a folder: model.safetensors (float32, Hugging Face names) and the \
            model's other files, with the last adapter's llm2vec_config.json. A GGUF file gives a GGUF file: \
            the LoRA-target projections in float32, every other tensor and all metadata as they were. \
            Existing files are never overwritten.
            """
    )

    @Option(help: "Base model: a Hugging Face folder, a .gguf file, or an installed model's name.")
    var model: String

    @Option(name: .customLong("adapter"), help: "PEFT adapter folder, merged in the order given (repeatable).")
    var adapters: [String] = []

    @Option(help: "Output: a folder for a Hugging Face model (created; must not hold a model already); for a GGUF model, the .gguf file to write, or a folder (any path not ending in .gguf) that receives model.gguf.")
    var output: String

    func run() throws {
        try reportingErrors {
            let written = try MergedCheckpoint.write(model: model, adapters: adapters, to: URL(fileURLWithPath: output))
            FileHandle.standardError.write(Data("merged \(adapters.count) adapter(s) into \(model) → \(output) (\(written.joined(separator: ", ")))\n".utf8))
        }
    }
}
