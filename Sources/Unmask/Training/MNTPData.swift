import UnmaskKernels
import UnmaskTokenizers

// MNTP training data the way llm2vec's experiments/run_mntp.py prepares it: texts tokenized with
// their special tokens, concatenated and cut into fixed-length blocks (transformers' `group_texts`),
// then masked per batch as transformers' `DataCollatorForLanguageModeling` does.
//
// Every random choice is a pure function of (seed, epoch, block) or (seed, step), never a stream
// advanced across the run, so a resumed run re-creates exactly the batches it would have seen.

// MARK: Corpus

/// Training text as token blocks of `blockLength`, back to back.
///
/// One deliberate difference from run_mntp.py: `group_texts` there runs per `map` batch of 1,000
/// lines and drops a remainder from each; here the whole corpus is concatenated and only its final
/// remainder is dropped. A corpus shorter than one block is kept as one shorter block rather than
/// dropped, so that small experiments still have something to train on.
public struct MNTPCorpus: Sendable {
    /// Tokens per block: the `maxLength` asked for, or the whole corpus when that is shorter.
    public let blockLength: Int
    /// The blocks' token ids, [blockCount · blockLength].
    public let ids: [Int32]
    /// Per token of `ids`: a special token, never masked. These are the tokens the tokenizer's
    /// post-processor puts around each text (BOS/EOS, BERT's [CLS]/[SEP]), which is exactly what
    /// run_mntp.py's `tokenizer(..., return_special_tokens_mask=True)` marks: a special token's
    /// text written inside the corpus (a literal "</s>") is ordinary, maskable text there too.
    public let special: [Bool]

    public var blockCount: Int { ids.count / blockLength }

    /// Positions of block `index` in `ids` and `special`.
    public func block(_ index: Int) -> Range<Int> { index * blockLength..<(index + 1) * blockLength }

    /// Packs a token stream (all texts concatenated) into blocks of `maxLength`, dropping the remainder.
    public init(stream: [Int32], special: [Bool], maxLength: Int) {
        precondition(maxLength > 0 && !stream.isEmpty && special.count == stream.count)
        blockLength = min(maxLength, stream.count)
        let kept = stream.count / blockLength * blockLength
        ids = Array(stream[..<kept])
        self.special = Array(special[..<kept])
    }

    /// Tokenizes every text with its special tokens (texts in parallel, order kept) and packs them.
    public init(texts: [String], tokenizer: Tokenizer, maxLength: Int) throws {
        let prefix = tokenizer.prefixTokenIds.count, suffix = tokenizer.suffixTokenIds.count
        var parts = [(ids: [Int32], special: [Bool])](repeating: ([], []), count: Parallel.coreCount)
        parts.withUnsafeMutableBufferPointer { parts in
            Parallel.chunks(texts.count, minimumPerChunk: 64) { worker, range in
                var ids: [Int32] = [], special: [Bool] = []
                for text in texts[range] {
                    // encode gives prefix + text + suffix, so the special positions are known.
                    let encoded = tokenizer.encode(text, addSpecialTokens: true)
                    ids.append(contentsOf: encoded.lazy.map { Int32($0) })
                    special.append(contentsOf: encoded.indices.lazy.map { $0 < prefix || $0 >= encoded.count - suffix })
                }
                parts[worker] = (ids, special)
            }
        }
        let stream = parts.flatMap(\.ids)
        guard !stream.isEmpty else {
            throw UnmaskError.invalidInput(source: "MNTP training text", reason: "no tokens: the texts are empty")
        }
        self.init(stream: stream, special: parts.flatMap(\.special), maxLength: maxLength)
    }

    /// Reads `path` (a `.txt` file with one text a line, or JSONL with a "text" field a line: the
    /// formats, and errors, of `TextInputs`) and packs it. Blank texts are skipped, as run_mlm's
    /// line-by-line mode does; grouped, they would only add stray BOS/EOS tokens.
    public static func read(path: String, tokenizer: Tokenizer, maxLength: Int) throws -> MNTPCorpus {
        let texts = try TextInputs.read(path: path).map(\.text).filter { !$0.allSatisfy(\.isWhitespace) }
        guard !texts.isEmpty else { throw UnmaskError.invalidInput(source: path, reason: "no texts: every line is blank") }
        return try MNTPCorpus(texts: texts, tokenizer: tokenizer, maxLength: maxLength)
    }
}

// MARK: Masking

/// Which tokens become targets and what the model sees in their place: transformers'
/// `DataCollatorForLanguageModeling.torch_mask_tokens` (of the selected tokens 80% become the mask
/// token, 10% a random id, 10% stay), or with `allMask` llm2vec's
/// `DataCollatorForLanguageModelingWithFullMasking` (all become the mask token; llm2vec's Mistral recipe).
public struct MNTPMasking: Sendable, Equatable {
    /// Chance that each non-special token is selected as a target (llm2vec's `mlm_probability`).
    public var probability: Double
    public var maskTokenID: Int32
    /// Random replacements are uniform in `0..<vocabularySize` (transformers: `len(tokenizer)`).
    public var vocabularySize: Int
    public var allMask: Bool

    public init(maskTokenID: Int32, vocabularySize: Int, probability: Double = 0.2, allMask: Bool = false) {
        precondition(probability >= 0 && probability <= 1, "masking probability must be in [0, 1]")
        precondition(vocabularySize > 0 && maskTokenID >= 0 && Int(maskTokenID) < vocabularySize)
        self.probability = probability
        self.maskTokenID = maskTokenID
        self.vocabularySize = vocabularySize
        self.allMask = allMask
    }

    /// The mask token named by its vocabulary string. Decoders have no mask token, so run_mntp.py
    /// uses `_` (its "blank" mask type), an ordinary token: byte-level BPE and SentencePiece
    /// vocabularies both store it as "_" (SentencePiece's word marker is the different "▁").
    /// transformers silently maps a token missing from the vocabulary to UNK; this is an error.
    public init(tokenizer: Tokenizer, maskToken: String = "_", probability: Double = 0.2, allMask: Bool = false) throws {
        guard let id = tokenizer.id(forToken: maskToken) else {
            throw UnmaskError.tokenizer("mask token '\(maskToken)' is not in the tokenizer's vocabulary: choose a token that is")
        }
        self.init(maskTokenID: Int32(id), vocabularySize: tokenizer.vocabularySize, probability: probability, allMask: allMask)
    }

    /// Masks one block, appending the model's inputs and the labels (the original id at each
    /// target, −100 elsewhere). Every draw comes from `seed`, so any block's masks can be
    /// re-created on their own. Special tokens are never selected and draw nothing.
    public func mask(_ ids: ArraySlice<Int32>, special: ArraySlice<Bool>, seed: UInt64,
                     inputs: inout [Int32], labels: inout [Int32]) {
        precondition(ids.count == special.count)
        var random = SplitMix64(seed: seed)
        for (id, isSpecial) in zip(ids, special) {
            guard !isSpecial, random.unit() < probability else {
                inputs.append(id)
                labels.append(-100)
                continue
            }
            labels.append(id)
            if allMask {
                inputs.append(maskTokenID)
            } else {
                // One uniform draw splits 80/10/10, the same distribution as HF's two Bernoullis.
                let u = random.unit()
                inputs.append(u < 0.8 ? maskTokenID : u < 0.9 ? Int32(random.below(UInt64(vocabularySize))) : id)
            }
        }
    }
}

// MARK: Batches

/// One MNTP batch: whole blocks as rows, so no padding.
public struct MNTPBatch: Sendable {
    /// The masked inputs; every row's valid span is the whole row.
    public let tokens: TokenBatch
    /// One per token: the target of token i is `labels[b·length + i]`, −100 where there is none
    /// (what `LoRADecoder.mntp` takes).
    public let labels: [Int32]
    /// The corpus block of each row.
    public let blocks: [Int]

    /// The targets the loss and accuracy count: label at token i ≥ 1, predicted from the model's
    /// output at i − 1 of the same row (a label at token 0 has no predecessor and is ignored).
    public var targets: [MNTPTarget] {
        var targets: [MNTPTarget] = []
        let length = tokens.length
        for b in 0..<tokens.batch {
            for i in 1..<max(1, length) where labels[b * length + i] != -100 {
                targets.append(MNTPTarget(outputRow: b * length + i - 1, label: labels[b * length + i]))
            }
        }
        return targets
    }
}

public struct MNTPTarget: Sendable, Equatable {
    /// Row of the model's flattened [batch·length] output whose logits predict `label`.
    public let outputRow: Int
    public let label: Int32

    public init(outputRow: Int, label: Int32) {
        self.outputRow = outputRow
        self.label = label
    }
}

/// Masked-token accuracy as run_mntp.py's `compute_metrics`: the logits' argmax at i − 1 against the
/// label at i, counted over every target of every evaluation batch (not a mean of batch accuracies).
public struct MNTPAccuracy: Sendable, Equatable {
    public private(set) var correct = 0
    public private(set) var total = 0

    public init() {}

    /// `predictions[j]`: the argmax token of the logits at `targets[j].outputRow`.
    public mutating func add(predictions: [Int32], targets: [MNTPTarget]) {
        precondition(predictions.count == targets.count)
        for (prediction, target) in zip(predictions, targets) where prediction == target.label { correct += 1 }
        total += targets.count
    }

    /// 0 before any target is counted.
    public var value: Double { total == 0 ? 0 : Double(correct) / Double(total) }
}

/// A corpus split into held-out and training blocks, and the masked batches of every training
/// step and of the evaluation.
///
/// - Validation: the corpus's first blocks, as run_mntp.py holds out the first
///   `validation_split_percentage`% of the lines (`train[:5%]`): round(fraction · blocks), but at
///   least one block when the fraction is positive and there are two or more, and never every block.
/// - Training: each epoch visits the training blocks in its own seeded shuffle; step s is the
///   (s mod stepsPerEpoch)-th run of `batchSize` blocks of epoch s / stepsPerEpoch, the epoch's last
///   batch holding what is left (a DataLoader without drop_last). Each block is masked afresh per
///   epoch from (seed, epoch, block).
public struct MNTPData: Sendable {
    public let corpus: MNTPCorpus
    public let masking: MNTPMasking
    public let seed: UInt64
    public let validationBlocks: Range<Int>
    public let trainingBlocks: Range<Int>

    /// `validationFraction` defaults to run_mntp.py's `validation_split_percentage` (5), `seed` to
    /// transformers' `TrainingArguments.seed`.
    public init(corpus: MNTPCorpus, masking: MNTPMasking, validationFraction: Double = 0.05, seed: UInt64 = 42) {
        precondition(validationFraction >= 0 && validationFraction <= 1, "validation fraction must be in [0, 1]")
        let n = corpus.blockCount
        // Python's round (half to even), as `datasets` rounds percent slices.
        let rounded = Int((Double(n) * validationFraction).rounded(.toNearestOrEven))
        let held = validationFraction > 0 && n >= 2 ? min(max(rounded, 1), n - 1) : 0
        self.corpus = corpus
        self.masking = masking
        self.seed = seed
        validationBlocks = 0..<held
        trainingBlocks = held..<n
    }

    public func stepsPerEpoch(batchSize: Int) -> Int {
        precondition(batchSize > 0)
        return (trainingBlocks.count + batchSize - 1) / batchSize
    }

    /// Epoch `epoch`'s order of the training blocks, a shuffle seeded by (seed, epoch) alone.
    public func order(epoch: Int) -> [Int] {
        var order = Array(trainingBlocks)
        var random = SplitMix64(seed: Self.streamSeed(seed, .shuffle, epoch))
        random.shuffle(&order)
        return order
    }

    /// The batch of global step `step` (0-based); steps past an epoch continue into the next.
    /// Rebuilds the epoch's order each call (O(training blocks), small beside a training step).
    public func batch(step: Int, batchSize: Int) -> MNTPBatch {
        precondition(step >= 0)
        let perEpoch = stepsPerEpoch(batchSize: batchSize)
        let epoch = step / perEpoch, first = step % perEpoch * batchSize
        let shuffled = order(epoch: epoch)
        let blocks = Array(shuffled[first..<min(first + batchSize, shuffled.count)])
        return makeBatch(blocks) { Self.streamSeed(seed, .trainingMask, epoch, $0) }
    }

    /// The held-out blocks in order, `batchSize` a batch, masked from (seed, block) alone: every
    /// evaluation scores the same targets, so its losses compare across a run. (transformers
    /// re-masks the evaluation set randomly each time.)
    public func validationBatches(batchSize: Int) -> [MNTPBatch] {
        precondition(batchSize > 0)
        return stride(from: validationBlocks.lowerBound, to: validationBlocks.upperBound, by: batchSize).map { first in
            makeBatch(Array(first..<min(first + batchSize, validationBlocks.upperBound))) {
                Self.streamSeed(seed, .validationMask, 0, $0)
            }
        }
    }

    private func makeBatch(_ blocks: [Int], maskSeed: (Int) -> UInt64) -> MNTPBatch {
        let length = corpus.blockLength
        var inputs: [Int32] = [], labels: [Int32] = []
        inputs.reserveCapacity(blocks.count * length)
        labels.reserveCapacity(blocks.count * length)
        for block in blocks {
            let range = corpus.block(block)
            masking.mask(corpus.ids[range], special: corpus.special[range], seed: maskSeed(block), inputs: &inputs, labels: &labels)
        }
        let tokens = TokenBatch(ids: inputs, batch: blocks.count, length: length, valid: Array(repeating: 0..<length, count: blocks.count))
        return MNTPBatch(tokens: tokens, labels: labels, blocks: blocks)
    }

    private enum Stream: UInt64 { case shuffle = 1, trainingMask, validationMask }

    /// The seed of one independent stream, hashed from (seed, stream, epoch, block).
    private static func streamSeed(_ seed: UInt64, _ stream: Stream, _ epoch: Int, _ block: Int = 0) -> UInt64 {
        SplitMix64.derive(seed, stream.rawValue, UInt64(epoch), UInt64(block))
    }
}
