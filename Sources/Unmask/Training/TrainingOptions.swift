import Foundation

/// Which LLM2Vec stage a run trains.
public enum TrainingRecipe: String, Codable, Sendable, CaseIterable {
    case mntp, simcse, supervised
}

/// Every hyperparameter of a run, with the LLM2Vec recipe's defaults (`defaults(for:)`), saved
/// with each checkpoint so `--resume` continues the same run.
public struct TrainingOptions: Codable, Sendable, Equatable {
    public var recipe: TrainingRecipe
    public var steps: Int
    /// Examples (MNTP: blocks; contrastive: query/document pairs) per optimizer step.
    public var batchSize: Int
    /// Examples per forward/backward; the step's gradient is accumulated over batchSize / microBatchSize of them.
    public var microBatchSize: Int
    public var learningRate: Float
    public var warmupSteps: Int
    public var weightDecay: Float
    /// Gradients are scaled down to this global norm (Hugging Face Trainer's max_grad_norm); 0 turns clipping off.
    public var maxGradNorm: Float
    public var seed: UInt64
    public var rank: Int
    public var alpha: Float
    public var loraDropout: Float
    public var attentionDropout: Float
    public var maxLength: Int
    /// MNTP: fraction of tokens masked; mask token and the all-mask variant.
    public var maskProbability: Float
    public var maskToken: String
    public var allMask: Bool
    /// Contrastive: cosine similarities are divided by this before the softmax.
    public var temperature: Float
    /// Share of the data held out for evaluation.
    public var evalFraction: Double
    /// Cap on held-out examples used per evaluation.
    public var evalLimit: Int
    public var evalEvery: Int
    public var saveEvery: Int
    /// Bidirectional attention (LLM2Vec); false trains the causal model (an ablation).
    public var bidirectional: Bool

    public static func defaults(for recipe: TrainingRecipe) -> TrainingOptions {
        var o = TrainingOptions(recipe: recipe, steps: 1000, batchSize: 32, microBatchSize: 8, learningRate: 5e-5, warmupSteps: 0,
                                weightDecay: 0, maxGradNorm: 1, seed: 42, rank: 16, alpha: 32, loraDropout: 0.05, attentionDropout: 0,
                                maxLength: 512, maskProbability: 0.2, maskToken: "_", allMask: false, temperature: 0.05,
                                evalFraction: 0.05, evalLimit: 256, evalEvery: 100, saveEvery: 100, bidirectional: true)
        switch recipe {
        case .mntp:
            break
        case .simcse:
            o.learningRate = 3e-5
            o.batchSize = 128
            o.microBatchSize = 32
            o.maxLength = 128
            o.attentionDropout = 0.3
        case .supervised:
            o.learningRate = 2e-4
            o.warmupSteps = 300
            o.batchSize = 64
            o.microBatchSize = 16
            o.temperature = 0.02
        }
        return o
    }

    /// Checks ranges; names the flag at fault.
    public func validate() throws {
        func check(_ ok: Bool, _ flag: String, _ expected: String) throws {
            if !ok { throw UnmaskError.invalidInput(source: "--\(flag)", reason: "expected \(expected)") }
        }
        try check(steps > 0, "steps", "a positive number of optimizer steps")
        try check(batchSize > 0, "batch-size", "a positive number")
        try check(microBatchSize > 0 && microBatchSize <= batchSize, "micro-batch-size", "1...batch-size (\(batchSize))")
        try check(recipe != .mntp || batchSize % microBatchSize == 0, "micro-batch-size", "a divisor of --batch-size (\(batchSize)) for MNTP")
        try check(recipe == .mntp || batchSize >= 2, "batch-size", "at least 2: contrastive training needs in-batch negatives")
        try check(learningRate > 0 && learningRate.isFinite, "learning-rate", "a positive number")
        try check(warmupSteps >= 0 && warmupSteps < steps, "warmup-steps", "0..<steps (\(steps))")
        try check(weightDecay >= 0, "weight-decay", "≥ 0")
        try check(maxGradNorm >= 0, "max-grad-norm", "≥ 0 (0: no clipping)")
        try check(rank > 0, "rank", "a positive LoRA rank")
        try check(alpha > 0, "alpha", "a positive LoRA alpha")
        try check((0..<1).contains(loraDropout), "lora-dropout", "a probability in [0, 1)")
        try check((0..<1).contains(attentionDropout), "attention-dropout", "a probability in [0, 1)")
        try check(maxLength >= 2, "max-length", "at least 2 tokens")
        try check(maskProbability > 0 && maskProbability < 1, "mask-probability", "a probability in (0, 1)")
        try check(temperature > 0, "temperature", "a positive number")
        try check(evalFraction >= 0 && evalFraction < 1, "eval-fraction", "a fraction in [0, 1)")
        try check(evalLimit >= 0, "eval-limit", "≥ 0")
        try check(evalEvery >= 0, "eval-every", "≥ 0 (0: only at the end)")
        try check(saveEvery >= 0, "save-every", "≥ 0 (0: only at the end)")
    }

    /// Learning rate of optimizer step `step` (0-based): linear warmup from 0, then linear decay
    /// to 0 at `steps` (transformers' get_linear_schedule_with_warmup).
    public func learningRate(at step: Int) -> Float {
        if step < warmupSteps { return learningRate * Float(step) / Float(max(1, warmupSteps)) }
        return learningRate * max(0, Float(steps - step) / Float(max(1, steps - warmupSteps)))
    }
}
