import Crypto
import Foundation
import UnmaskKernels

/// Settings of one evaluation run.
public struct EvaluationOptions: Sendable {
    /// Prepend each task's instruction (queries only for retrieval), LLM2Vec style, or for a
    /// sentence-transformers model its own prompts (see `TaskPrompts`). Off: no prompt at all.
    public var useInstructions = true
    /// Cap each task's size (see `EvalTask.limited`); nil for the full task.
    public var limit: Int?
    /// Where embeddings are cached; nil disables the cache.
    public var cacheDirectory: URL?
    /// MTEB classification: experiments, training items per label, test cap, LR iterations.
    public var classificationExperiments = 10
    public var samplesPerLabel = 8
    public var maxTestItems = 2048
    public var logisticMaxIterations = 100
    /// MTEB clustering (ClusteringFast): bootstrap sets, documents per set, k-means batch.
    public var clusteringSets = 10
    public var documentsPerSet = 2048
    public var kMeansBatchSize = 512
    public var seed: UInt64 = 42

    public init() {}
}

/// Progress of the current task: (what is being embedded, done, total).
public typealias EvaluationProgress = (_ stage: String, _ done: Int, _ total: Int) -> Void

/// One task's scores.
public struct TaskResult: Codable, Sendable {
    public var task: String
    public var type: EvalTaskType
    public var family: String
    public var mainScoreName: String
    public var scores: [String: Double]
    /// Seconds, embedding included.
    public var evaluationTime: Double
    /// Pairs, queries or items scored.
    public var size: Int
    /// Texts embedded (after de-duplication) and how many came from the cache.
    public var textsEmbedded: Int
    public var textsFromCache: Int
    /// The prompt each kind of text got, by `TaskPrompts.Role` name (text, or query and document).
    public var prompts: [String: TaskPrompt] = [:]

    public var mainScore: Double { scores["main_score"] ?? .nan }
}

/// Runs MTEB-protocol tasks on any `TextEmbedder`.
public final class Evaluator {
    public let embedder: TextEmbedder
    public let options: EvaluationOptions
    private let cache: EmbeddingCache?
    /// What computes the vectors: `embedder` itself, or for a Matryoshka size its full-size twin,
    /// whose vectors are cut here. Every size of one model then shares the full-size cache.
    private let computing: TextEmbedder
    private let matryoshka: (dimensions: Int, normalize: Bool)?
    private var embedded = 0, fromCache = 0

    public init(embedder: TextEmbedder, options: EvaluationOptions) throws {
        var embedder = embedder
        // No instructions means no prompt at all: an input without an instruction would otherwise
        // get a sentence-transformers model's default prompt, unless one was chosen explicitly.
        if !options.useInstructions, let encoder = embedder as? Encoder, !encoder.defaultPrompt.isEmpty, !Self.promptChosen(encoder) {
            embedder = try Encoder(sharing: encoder) { $0.prompt = "" }
        }
        self.embedder = embedder
        self.options = options
        if let encoder = embedder as? Encoder, let dimensions = encoder.options.dimensions {
            // Cutting then normalizing the full vector is what the head does with `dimensions`.
            computing = try Encoder(sharing: encoder) { $0.dimensions = nil }
            matryoshka = (dimensions, encoder.head.normalize)
        } else {
            computing = embedder
            matryoshka = nil
        }
        cache = try options.cacheDirectory.map { [computing] in
            try EmbeddingCache(directory: $0, identity: EmbeddingCache.identity(of: computing), dimension: computing.dimension)
        }
    }

    public func run(_ fullTask: EvalTask, progress: EvaluationProgress? = nil) throws -> TaskResult {
        let start = Date()
        embedded = 0; fromCache = 0
        let task = fullTask.limited(to: options.limit, seed: options.seed)
        let chosen = prompts(for: task.spec)
        // For a sentence-transformers Encoder an input's instruction is the prompt text itself
        // (prepended and pooled); for an LLM2Vec one it is the instruction, kept out of pooling.
        let instruction = chosen[.text]?.text ?? ""
        var scores: [String: Double]
        switch task.data {
        case let .sts(pairs): scores = try sts(pairs, instruction: instruction, progress: progress)
        case let .retrieval(corpus, queries, qrels):
            scores = try retrieval(corpus: corpus, queries: queries, qrels: qrels, queryInstruction: chosen[.query]?.text ?? "",
                                   documentInstruction: chosen[.document]?.text ?? "", progress: progress)
        case let .clustering(items): scores = try clustering(items, instruction: instruction, progress: progress)
        case let .classification(items): scores = try classification(items, instruction: instruction, progress: progress)
        }
        scores["main_score"] = scores[task.spec.type.mainScore]
        return TaskResult(task: task.spec.name, type: task.spec.type, family: task.spec.family, mainScoreName: task.spec.type.mainScore,
                          scores: scores, evaluationTime: Date().timeIntervalSince(start), size: task.size,
                          textsEmbedded: embedded, textsFromCache: fromCache,
                          prompts: Dictionary(uniqueKeysWithValues: chosen.map { ($0.key.rawValue, $0.value) }))
    }

    /// The prompt each kind of `spec`'s texts gets: a prompt chosen for the model (`--prompt`,
    /// `--prompt-name`) for every text; with instructions off, none; else the model's own
    /// prompts by task type, or the suite's instruction (`TaskPrompts`).
    public func prompts(for spec: EvalTaskSpec) -> [TaskPrompts.Role: TaskPrompt] {
        let encoder = embedder as? Encoder
        var out: [TaskPrompts.Role: TaskPrompt] = [:]
        for role in TaskPrompts.roles(of: spec.type) {
            if let encoder, Self.promptChosen(encoder) {
                out[role] = TaskPrompt(name: encoder.options.prompt == nil ? encoder.options.promptName : nil, text: encoder.defaultPrompt)
            } else if !options.useInstructions {
                out[role] = TaskPrompt(name: nil, text: "")
            } else {
                out[role] = TaskPrompts.select(spec, role: role, modelPrompts: encoder?.sentenceTransformer?.prompts ?? [:])
            }
        }
        return out
    }

    /// Whether a sentence-transformers encoder was given a prompt to use for every input (only
    /// those prepend one; an LLM2Vec encoder ignores `--prompt`).
    static func promptChosen(_ encoder: Encoder) -> Bool {
        encoder.sentenceTransformer != nil && (encoder.options.prompt != nil || encoder.options.promptName != nil)
    }

    /// Embeds `texts` (each once), from the cache where possible.
    func embed(_ texts: [String], instruction: String, stage: String, progress: EvaluationProgress?) throws -> [[Float]] {
        var unique: [String: Int] = [:]
        var order: [String] = []
        for text in texts where unique[text] == nil { unique[text] = order.count; order.append(text) }
        var vectors = [[Float]?](repeating: nil, count: order.count)
        var missing: [Int] = []
        for (i, text) in order.enumerated() {
            if let hit = cache?.lookup(text: text, instruction: instruction) { vectors[i] = hit } else { missing.append(i) }
        }
        embedded += order.count
        fromCache += order.count - missing.count
        progress?(stage, 0, missing.count)
        if !missing.isEmpty {
            let inputs = missing.map { EncoderInput(order[$0], instruction: instruction) }
            let result = try computing.encode(inputs) { done, total in progress?(stage, done, total) }
            for (slot, vector) in zip(missing, result) { vectors[slot] = vector }
            try cache?.store(zip(missing, result).map { (order[$0.0], instruction, $0.1) })
        }
        guard let matryoshka else { return texts.map { vectors[unique[$0]!]! } }
        let cut = vectors.map { SentenceTransformerHead.finish($0!, dimensions: matryoshka.dimensions, normalize: matryoshka.normalize) }
        return texts.map { cut[unique[$0]!] }
    }

    // MARK: STS (MTEB STSEvaluator)

    func sts(_ pairs: [ScoredPair], instruction: String, progress: EvaluationProgress?) throws -> [String: Double] {
        let all = try embed(pairs.map(\.sentence1) + pairs.map(\.sentence2), instruction: instruction, stage: "texts", progress: progress)
        let first = Array(all[0..<pairs.count]), second = Array(all[pairs.count...])
        let gold = pairs.map(\.score)
        let cosine = pairs.indices.map { Metrics.cosine(first[$0], second[$0]) }
        let euclidean = pairs.indices.map { -Metrics.euclidean(first[$0], second[$0]) }
        return ["cosine_spearman": Metrics.spearman(cosine, gold), "cosine_pearson": Metrics.pearson(cosine, gold),
                "euclidean_spearman": Metrics.spearman(euclidean, gold), "euclidean_pearson": Metrics.pearson(euclidean, gold)]
    }

    // MARK: Retrieval (MTEB RetrievalEvaluator: cosine similarity, pytrec_eval measures)

    func retrieval(corpus: [IdentifiedText], queries: [IdentifiedText], qrels: [RelevanceJudgement], queryInstruction: String,
                   documentInstruction: String, progress: EvaluationProgress?) throws -> [String: Double] {
        let documents = Metrics.normalized(try embed(corpus.map(\.text), instruction: documentInstruction, stage: "corpus", progress: progress))
        let questions = Metrics.normalized(try embed(queries.map(\.text), instruction: queryInstruction, stage: "queries", progress: progress))
        let position = Dictionary(corpus.enumerated().map { ($0.element.id, $0.offset) }, uniquingKeysWith: { first, _ in first })
        var judged: [String: [Int: Double]] = [:]
        for judgement in qrels { if let doc = position[judgement.corpusId] { judged[judgement.queryId, default: [:]][doc] = judgement.score } }
        let cutoffs = [1, 3, 5, 10, 100]
        var sums: [String: Double] = [:]
        var counted = 0
        for (q, query) in queries.enumerated() {
            guard let relevance = judged[query.id], !relevance.isEmpty else { continue }
            counted += 1
            let scores = documents.map { doc in (0..<doc.count).reduce(0.0) { $0 + Double(doc[$1]) * Double(questions[q][$1]) } }
            let ranked = Metrics.ranking(scores)
            for k in cutoffs {
                sums["ndcg_at_\(k)", default: 0] += Metrics.ndcg(ranked: ranked, relevance: relevance, k: k)
                sums["recall_at_\(k)", default: 0] += Metrics.recall(ranked: ranked, relevance: relevance, k: k)
                sums["map_at_\(k)", default: 0] += Metrics.averagePrecision(ranked: ranked, relevance: relevance, k: k)
                sums["mrr_at_\(k)", default: 0] += Metrics.reciprocalRank(ranked: ranked, relevance: relevance, k: k)
            }
        }
        return sums.mapValues { counted > 0 ? $0 / Double(counted) : 0 }
    }

    // MARK: Clustering (MTEB ClusteringFast: bootstrapped mini-batch k-means, V-measure)

    func clustering(_ items: [LabeledText], instruction: String, progress: EvaluationProgress?) throws -> [String: Double] {
        let vectors = try embed(items.map(\.text), instruction: instruction, stage: "texts", progress: progress)
        let k = Set(items.map(\.label)).count
        var random = SplitMix64(seed: options.seed)
        var values: [Double] = []
        for set in 0..<options.clusteringSets {
            let chosen = items.count > options.documentsPerSet ? Array(items.indices.shuffled(using: &random).prefix(options.documentsPerSet)) : Array(items.indices)
            let kMeans = MiniBatchKMeans(clusters: k, batchSize: options.kMeansBatchSize)
            let fitted = kMeans.fit(chosen.map { vectors[$0] }, seed: options.seed &+ UInt64(set))
            values.append(Metrics.vMeasure(labels: chosen.map { items[$0].label }, clusters: fitted.labels).vMeasure)
        }
        return ["v_measure": Metrics.mean(values), "v_measure_std": Metrics.standardDeviation(values)]
    }

    // MARK: Classification (MTEB AbsTaskClassification with logRegClassificationEvaluator)

    func classification(_ items: [LabeledText], instruction: String, progress: EvaluationProgress?) throws -> [String: Double] {
        var random = SplitMix64(seed: options.seed)
        let train = items.filter { $0.split == "train" }
        var test = items.filter { $0.split != "train" }
        if test.count > options.maxTestItems { test = EvalTask.stratifiedSample(test, count: options.maxTestItems, random: &random) }
        let labels = Set(items.map(\.label)).sorted()
        let labelIndex = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($0.element, $0.offset) })
        guard !train.isEmpty, !test.isEmpty else {
            throw UnmaskError.invalidInput(source: "classification", reason: "needs train and test items (split field)")
        }
        // MTEB's undersampling: shuffle the training indices, keep the first n of each label.
        var indices = Array(train.indices)
        var experiments: [[Int]] = []
        for _ in 0..<options.classificationExperiments {
            indices.shuffle(using: &random)
            var perLabel: [String: Int] = [:]
            experiments.append(indices.filter { i in
                perLabel[train[i].label, default: 0] += 1
                return perLabel[train[i].label]! <= options.samplesPerLabel
            })
        }
        let needed = Array(Set(experiments.joined())).sorted()
        let trainVectors = try embed(needed.map { train[$0].text }, instruction: instruction, stage: "train", progress: progress)
        let trainByIndex = Dictionary(uniqueKeysWithValues: zip(needed, trainVectors.map { $0.map(Double.init) }))
        let testVectors = try embed(test.map(\.text), instruction: instruction, stage: "test", progress: progress).map { $0.map(Double.init) }
        let truth = test.map { labelIndex[$0.label]! }
        var accuracy: [Double] = [], macro: [Double] = [], weighted: [Double] = []
        for experiment in experiments {
            var model = LogisticRegression(maxIterations: options.logisticMaxIterations)
            model.fit(experiment.map { trainByIndex[$0]! }, labels: experiment.map { labelIndex[train[$0].label]! }, classes: labels.count)
            let predicted = testVectors.map { model.predict($0) }
            accuracy.append(Metrics.accuracy(truth: truth, predicted: predicted))
            macro.append(Metrics.f1(truth: truth, predicted: predicted))
            weighted.append(Metrics.f1(truth: truth, predicted: predicted, weighted: true))
        }
        return ["accuracy": Metrics.mean(accuracy), "accuracy_stderr": Metrics.standardDeviation(accuracy),
                "f1": Metrics.mean(macro), "f1_stderr": Metrics.standardDeviation(macro), "f1_weighted": Metrics.mean(weighted)]
    }
}

/// Embeddings on disk, one append-only file per embedder identity: records of the SHA-256 of
/// instruction and text, then `dimension` little-endian Float32s.
public final class EmbeddingCache {
    public let file: URL
    public let dimension: Int
    private var entries: [Data: [Float]] = [:]

    public init(directory: URL, identity: String, dimension: Int) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let key = Checksum.hex(identity)
        file = directory.appendingPathComponent("\(key).bin")
        self.dimension = dimension
        let description = directory.appendingPathComponent("\(key).txt")
        if !FileManager.default.fileExists(atPath: description.path) { try Data((identity + "\n").utf8).write(to: description) }
        if let data = try? Data(contentsOf: file) {
            let record = 32 + 4 * dimension
            var offset = 0
            while offset + record <= data.count {
                let digest = data.subdata(in: offset..<(offset + 32))
                var vector = [Float](repeating: 0, count: dimension)
                _ = vector.withUnsafeMutableBytes { data.copyBytes(to: $0, from: (offset + 32)..<(offset + record)) }
                entries[digest] = vector.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
                offset += record
            }
        }
    }

    public var count: Int { entries.count }

    static func digest(text: String, instruction: String) -> Data {
        var hasher = SHA256()
        hasher.update(data: Data(instruction.utf8))
        hasher.update(data: Data([0]))
        hasher.update(data: Data(text.utf8))
        return Data(hasher.finalize())
    }

    public func lookup(text: String, instruction: String) -> [Float]? { entries[Self.digest(text: text, instruction: instruction)] }

    public func store(_ items: [(text: String, instruction: String, vector: [Float])]) throws {
        var out = Data()
        for item in items where item.vector.count == dimension {
            let digest = Self.digest(text: item.text, instruction: item.instruction)
            entries[digest] = item.vector
            out.append(digest)
            item.vector.map { $0.bitPattern.littleEndian }.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        guard !out.isEmpty else { return }
        if !FileManager.default.fileExists(atPath: file.path) { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: out)
    }

    /// What makes two embedders' vectors interchangeable: for `Encoder`, the model file and
    /// adapters (path, size, date) and every option that changes the vectors; otherwise the label.
    public static func identity(of embedder: TextEmbedder) -> String {
        func stamp(_ path: String) -> String {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
            let date = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(path)#\(size)#\(Int(date))"
        }
        guard let encoder = embedder as? Encoder else { return "\(type(of: embedder))|\(embedder.label)|\(embedder.dimension)" }
        let o = encoder.options
        let adapters = encoder.adapters.map { stamp($0.directory + "/adapter_model.safetensors") }
        var settings = ["attention=\(o.attention.rawValue)", "pooling=\(o.pooling.rawValue)", "max_length=\(o.maxLength)",
               "doc_max_length=\(o.docMaxLength)", "skip_instruction=\(o.skipInstruction)", "normalize=\(o.normalize)"]
        // A Matryoshka size changes the vectors (and the record size); the default prompt is what an
        // empty instruction means. Named only when set, so earlier caches keep their identity.
        if o.dimensions != nil { settings.append("dimensions=\(encoder.dimension)") }
        if !encoder.defaultPrompt.isEmpty { settings.append("default_prompt=\(encoder.defaultPrompt)") }
        if o.longInputs == .chunk { settings.append("long=chunk,overlap=\(o.chunkOverlap.map(String.init) ?? "auto")") }
        // Float32 copies of F16/BF16/quantized matrices round differently from products computed
        // as stored: a parity run with --weight-precision f32 must not read the stored run's vectors.
        if encoder.weightPrecision == .float32 { settings.append("weights=f32") }
        let parts: [String] = ["Encoder", stamp(encoder.checkpoint.path)] + adapters + settings
        return parts.joined(separator: "|")
    }
}
