import ArgumentParser
import Foundation
import Unmask

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search an index written by `unmask embed --format npy` with text queries.",
        discussion: """
        Queries are embedded with the same model and options as the index (checked against its manifest; \
        the prompt or instruction may differ), then searched exactly: cosine similarity over float32, \
        float16, int8 or uint8 vectors; over binary or ubinary vectors, the Hamming-nearest \
        k × --rescore-multiplier candidates rescored by the float query · their bits (sentence-transformers' \
        binary + rescore). Prints one JSON line per query: its id and text, and the k results with their \
        ids, kept fields and scores.
        """
    )

    @OptionGroup var encoder: EncoderArguments

    @Option(help: "The index: a folder, .npy or .manifest.json written by `unmask embed --format npy` (or its shards).")
    var index: String

    @Option(name: .customLong("query"), help: "A query text (repeatable).")
    var queries: [String] = []

    @Option(name: .customLong("queries"), help: "Queries from a .txt (one a line) or JSONL ({\"text\", \"id\"?}) file.")
    var queriesFile: String?

    @Option(name: .customShort("k"), help: "Results per query.")
    var k: Int = 10

    @Option(help: "Binary indexes: candidates per result that the float query rescores.")
    var rescoreMultiplier: Int = 4

    @Option(help: "Binary indexes: a float32/float16/int8 index of the same corpus whose vectors rescore the candidates by cosine (read only at the candidates).")
    var rescoreIndex: String?

    func validate() throws {
        if queries.isEmpty == (queriesFile == nil) { throw ValidationError("give --query TEXT (repeatable) or --queries FILE") }
        if k < 1 { throw ValidationError("-k must be at least 1, got \(k)") }
        if rescoreMultiplier < 1 { throw ValidationError("--rescore-multiplier must be at least 1, got \(rescoreMultiplier)") }
    }

    func run() throws {
        try reportingErrors {
            let index = try VectorIndex(path: self.index)
            // Ids are JSON text, as the corpus reader gives them; a --query's is its position.
            var records: [(id: String, input: EncoderInput)] = queries.enumerated().map { (String($0.offset + 1), EncoderInput($0.element, instruction: encoder.instruction)) }
            if let queriesFile {
                let reader = try CorpusReader(path: queriesFile, defaultInstruction: encoder.instruction)
                while let record = try reader.next() { records.append((record.id, record.input)) }
            }
            let model = try encoder.makeEmbedder()
            try index.checkQueries(embeddedBy: EmbeddingCache.identity(of: model), source: self.index)
            let vectors = try model.encode(records.map(\.input), progress: nil)
            let rescoring = try rescoreIndex.map { try VectorIndex(path: $0) }
            let hits = try index.search(vectors, k: k, rescoreMultiplier: rescoreMultiplier, rescoring: rescoring)
            var out = ""
            for (record, results) in zip(records, hits) {
                out += "{\"query_id\": \(record.id), \"query\": \(JSONText.string(record.input.text)), \"results\": ["
                out += try results.map(index.result).joined(separator: ", ")
                out += "]}\n"
            }
            try writeStandardOutput(Data(out.utf8))
        }
    }
}
