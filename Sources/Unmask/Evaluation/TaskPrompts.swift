import Foundation

/// The prompt one kind of text of a task is embedded with.
public struct TaskPrompt: Codable, Sendable, Equatable {
    /// The model's prompt name (`config_sentence_transformers.json`), or nil for the suite's
    /// own instruction (which may be empty: no prompt).
    public var name: String?
    public var text: String

    public init(name: String?, text: String) { self.name = name; self.text = text }
}

/// Which prompt each text of a task gets.
///
/// LLM2Vec-style decoders get the suite's instruction, kept out of pooling. A
/// sentence-transformers model with named prompts (EmbeddingGemma) was trained with its own, and
/// is only comparable to its published scores when it gets them, so it is given those the way
/// MTEB's SentenceTransformer wrapper picks them: `"<Type>-<query|document>"`, then `"<Type>"`,
/// then `"query"`/`"document"`, where a non-retrieval task has no query/document role. The
/// suite's instruction is the fallback when the model has none of the names.
public enum TaskPrompts {
    /// Retrieval embeds queries and documents differently; other tasks embed every text alike.
    public enum Role: String, Codable, Sendable, CaseIterable {
        case text, query, document
    }

    /// The roles of a task type's texts.
    public static func roles(of type: EvalTaskType) -> [Role] {
        type == .retrieval ? [.query, .document] : [.text]
    }

    /// MTEB's task type names. Word similarity (SimLex, WordSim) is scored as STS, so it takes
    /// the STS prompt, as MTEB would give a word-pair STS task.
    static func mtebType(_ type: EvalTaskType) -> String {
        switch type {
        case .sts: return "STS"
        case .retrieval: return "Retrieval"
        case .clustering: return "Clustering"
        case .classification: return "Classification"
        }
    }

    /// The model prompt names to try, in MTEB's order.
    public static func candidateNames(type: EvalTaskType, role: Role) -> [String] {
        let name = mtebType(type)
        switch role {
        case .text: return [name]
        case .query, .document: return ["\(name)-\(role.rawValue)", name, role.rawValue]
        }
    }

    /// The suite's own instruction for a role: retrieval documents get none (LLM2Vec/E5).
    public static func suiteInstruction(_ spec: EvalTaskSpec, role: Role) -> String {
        role == .document ? "" : spec.instruction
    }

    /// The prompt for `role` texts of `spec`, from `modelPrompts` when the model has a matching
    /// name, else the suite's instruction.
    public static func select(_ spec: EvalTaskSpec, role: Role, modelPrompts: [String: String]) -> TaskPrompt {
        for name in candidateNames(type: spec.type, role: role) {
            if let text = modelPrompts[name] { return TaskPrompt(name: name, text: text) }
        }
        return TaskPrompt(name: nil, text: suiteInstruction(spec, role: role))
    }
}
