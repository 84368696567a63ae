import Foundation
import Testing
import UnmaskTestSupport

/// `unmask merge`, end to end: the merged folder embeds like the base with its adapters.
@Suite struct MergeCLITests {
    let model = Fixtures.path("models", "llama2-bf16")
    let adapters = ["mntp", "simcse"].flatMap { ["--adapter", Fixtures.path("models", "llama2-bf16", "adapters", $0)] }

    func embeddings(_ arguments: [String], input: String) throws -> [[Double]] {
        let result = try Executables.run(["embed", "--input", input] + arguments)
        try #require(result.status == 0, "\(result.stderr)")
        return try result.stdout.split(separator: "\n").map {
            ((try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["embedding"] as! [Double])
        }
    }

    @Test func mergedFolderEmbedsLikeBasePlusAdapters() throws {
        let root = try Fixtures.temporaryDirectory("merge-cli")
        let output = root.appendingPathComponent("merged").path
        let input = root.appendingPathComponent("texts.txt")
        try "The cat sat on the mat.\nStocks fell sharply on Monday.\nA dog barked.\n".write(to: input, atomically: true, encoding: .utf8)

        let result = try Executables.run(["merge", "--model", model, "--output", output] + adapters)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("merged 2 adapter(s)") && result.stderr.contains("model.safetensors"))

        let merged = try embeddings(["--model", output], input: input.path)
        let unmerged = try embeddings(["--model", model] + adapters, input: input.path)
        #expect(merged.count == 3 && unmerged.count == 3)
        for (a, b) in zip(merged, unmerged) {
            #expect(Compare.cosine(a.map(Float.init), b.map(Float.init)) >= 0.99999)
        }

        // Running it again must not replace the model.
        let again = try Executables.run(["merge", "--model", model, "--output", output] + adapters)
        #expect(again.status == 1)
        #expect(again.stderr.contains("already exists; merge never overwrites"), "\(again.stderr)")
    }
}
