import Foundation
import Testing
@testable import Unmask
import UnmaskKernels
import UnmaskTestSupport
import UnmaskTokenizers

@Suite struct MNTPDataTests {
    static func tokenizer(_ name: String) throws -> Tokenizer {
        try Tokenizer.load(directory: URL(fileURLWithPath: Fixtures.path("tokenizers", name)))
    }

    func file(_ name: String, _ content: String) throws -> String {
        let url = try Fixtures.temporaryDirectory("mntp").appendingPathComponent(name)
        try Data(content.utf8).write(to: url)
        return url.path
    }

    /// `blocks` blocks of `length` distinct ids, the first token of each special (a BOS).
    func corpus(blocks: Int, length: Int) -> MNTPCorpus {
        let count = blocks * length
        return MNTPCorpus(stream: (0..<count).map { Int32(1000 + $0) }, special: (0..<count).map { $0 % length == 0 }, maxLength: length)
    }

    let masking = MNTPMasking(maskTokenID: 7, vocabularySize: 50_000)

    // MARK: Packing

    @Test func packsBlocksAndDropsTheRemainder() {
        let stream = (0..<23).map(Int32.init), special = (0..<23).map { $0 % 6 == 0 }
        let corpus = MNTPCorpus(stream: stream, special: special, maxLength: 5)
        #expect(corpus.blockLength == 5 && corpus.blockCount == 4)
        #expect(corpus.ids == Array(stream[..<20]) && corpus.special == Array(special[..<20]))
        #expect(corpus.block(2) == 10..<15)
    }

    @Test func keepsACorpusShorterThanABlockAsOneBlock() {
        let corpus = MNTPCorpus(stream: [5, 6, 7], special: [true, false, false], maxLength: 8)
        #expect(corpus.blockLength == 3 && corpus.blockCount == 1 && corpus.ids == [5, 6, 7])
    }

    /// Expected blocks and special positions from run_mntp.py's preprocessing (transformers 4.44.2:
    /// `tokenizer(lines, return_special_tokens_mask=True)` then `group_texts` with 8).
    @Test(arguments: [
        ("llama2", [[1, 1234, 522, 660, 396, 443, 338, 329], [395, 330, 339, 275, 1, 486, 464, 331],
                    [334, 420, 337, 379, 363, 2, 363, 531], [400, 316, 341, 340, 416, 330, 322, 1]], [0, 12, 31]),
        ("added_tokens", [[400, 275, 68, 371, 72, 298, 274, 322], [86, 77, 272, 78, 87, 13, 401, 400],
                          [347, 346, 79, 82, 295, 85, 256, 220], [27, 14, 82, 29, 220, 408, 276, 64],
                          [89, 88, 220, 406, 401, 400, 220, 87]], [0, 14, 15, 36, 37]),
    ])
    func packsAsRunMNTPDoes(name: String, blocks: [[Int32]], specialPositions: [Int]) throws {
        let lines = ["The quick brown fox.", "jumps over </s> the lazy dog", "x"]
        let corpus = try MNTPCorpus(texts: lines, tokenizer: Self.tokenizer(name), maxLength: 8)
        #expect(corpus.ids == blocks.flatMap { $0 })
        // llama2's literal "</s>" (id 2 at 21) is text, not a special token, as in transformers.
        #expect(corpus.special.indices.filter { corpus.special[$0] } == specialPositions)
    }

    @Test func tokenizesManyTextsInOrder() throws {
        // Enough texts for the parallel tokenization to split them across workers.
        let tokenizer = try Self.tokenizer("added_tokens")
        let texts = (0..<3000).map { "text number \($0) of many" }
        let corpus = try MNTPCorpus(texts: texts, tokenizer: tokenizer, maxLength: 64)
        let encoded = texts.map { tokenizer.encode($0, addSpecialTokens: true) }
        let stream = encoded.flatMap { $0.map(Int32.init) }
        let special = encoded.flatMap { ids in ids.indices.map { $0 == 0 || $0 == ids.count - 1 } }
        #expect(corpus.blockCount == stream.count / 64)
        #expect(corpus.ids == Array(stream.prefix(corpus.ids.count)) && corpus.special == Array(special.prefix(corpus.ids.count)))
    }

    // MARK: Reading

    @Test func readsTextAndJSONLines() throws {
        let tokenizer = try Self.tokenizer("llama2")
        let expected = try MNTPCorpus(texts: ["first line", "second"], tokenizer: tokenizer, maxLength: 4)
        let text = try file("train.txt", "first line\r\n\n   \nsecond\n")
        let jsonl = try file("train.jsonl", "{\"text\": \"first line\"}\n\n{\"text\": \"second\", \"id\": 3}\n")
        for path in [text, jsonl] {
            let corpus = try MNTPCorpus.read(path: path, tokenizer: tokenizer, maxLength: 4)
            #expect(corpus.ids == expected.ids && corpus.special == expected.special)
        }
    }

    @Test func readErrorsNameTheFileAndLine() throws {
        let tokenizer = try Self.tokenizer("llama2")
        func failure(_ path: String) -> UnmaskError? {
            do { _ = try MNTPCorpus.read(path: path, tokenizer: tokenizer, maxLength: 8) } catch let error as UnmaskError {
                return error
            } catch { return nil }
            return nil
        }
        let malformed = try file("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n")
        #expect(failure(malformed) == .invalidInput(source: malformed + ":2", reason: "invalid JSON (expected an object like {\"text\": \"...\"})"))
        let missingField = try file("bad.jsonl", "{\"text\": \"ok\"}\n\n{\"body\": \"no text\"}\n")
        #expect(failure(missingField) == .invalidInput(source: missingField + ":3", reason: "field 'text': expected a string"))
        let empty = try file("empty.txt", "")
        #expect(failure(empty) == .invalidInput(source: empty, reason: "no texts: the input is empty"))
        let blank = try file("blank.txt", "\n  \n\t\n")
        #expect(failure(blank) == .invalidInput(source: blank, reason: "no texts: every line is blank"))
        let missing = empty + ".absent"
        #expect(failure(missing) == .fileNotFound(path: missing, what: "input file"))
    }

    // MARK: Masking

    @Test func maskTokenComesFromTheVocabulary() throws {
        // Ids and len(tokenizer) as transformers gives them for "_".
        let smollm = try MNTPMasking(tokenizer: Self.tokenizer("smollm"))
        #expect(smollm.maskTokenID == 70 && smollm.vocabularySize == 800 && smollm.probability == 0.2 && !smollm.allMask)
        let qwen2 = try MNTPMasking(tokenizer: Self.tokenizer("qwen2"), probability: 0.3, allMask: true)
        #expect(qwen2.maskTokenID == 62 && qwen2.vocabularySize == 1005 && qwen2.probability == 0.3 && qwen2.allMask)
        // The tiny Llama-2 vocabulary has no "_" (transformers would silently use UNK).
        #expect(throws: UnmaskError.tokenizer("mask token '_' is not in the tokenizer's vocabulary: choose a token that is")) {
            _ = try MNTPMasking(tokenizer: Self.tokenizer("llama2"))
        }
    }

    /// Masks 100,000 ids (every 10th special) and counts what happened to each.
    func maskedCounts(_ masking: MNTPMasking) -> (selected: Int, maskable: Int, replaced: Int, random: Int, kept: Int) {
        var generator = SplitMix64(seed: 3)
        let ids = (0..<100_000).map { _ in Int32.random(in: 1000..<30_000, using: &generator) }
        let special = ids.indices.map { $0 % 10 == 0 }
        var inputs: [Int32] = [], labels: [Int32] = []
        masking.mask(ids[...], special: special[...], seed: 11, inputs: &inputs, labels: &labels)
        var counts = (selected: 0, maskable: 0, replaced: 0, random: 0, kept: 0)
        for i in ids.indices {
            if !special[i] { counts.maskable += 1 }
            guard labels[i] != -100 else {
                #expect(inputs[i] == ids[i])
                continue
            }
            #expect(!special[i] && labels[i] == ids[i])
            counts.selected += 1
            if inputs[i] == masking.maskTokenID { counts.replaced += 1 } else if inputs[i] == ids[i] { counts.kept += 1 } else { counts.random += 1 }
        }
        return counts
    }

    @Test func masksTwentyPercentEightyTenTen() {
        let c = maskedCounts(masking)
        // Binomial standard deviations: 0.0013 for the selected share, ≤ 0.003 for the split.
        #expect(abs(Double(c.selected) / Double(c.maskable) - 0.2) < 0.006)
        #expect(abs(Double(c.replaced) / Double(c.selected) - 0.8) < 0.012)
        #expect(abs(Double(c.random) / Double(c.selected) - 0.1) < 0.009)
        #expect(abs(Double(c.kept) / Double(c.selected) - 0.1) < 0.009)
    }

    @Test func allMaskReplacesEverySelectedToken() {
        var all = masking
        all.allMask = true
        let c = maskedCounts(all)
        #expect(abs(Double(c.selected) / Double(c.maskable) - 0.2) < 0.006)
        #expect(c.replaced == c.selected && c.random == 0 && c.kept == 0)
    }

    @Test func masksArePureFunctionsOfTheSeed() {
        let ids = (0..<500).map { Int32(100 + $0) }, special = [Bool](repeating: false, count: 500)
        func run(_ seed: UInt64) -> [Int32] {
            var inputs: [Int32] = [], labels: [Int32] = []
            masking.mask(ids[...], special: special[...], seed: seed, inputs: &inputs, labels: &labels)
            return inputs + labels
        }
        #expect(run(5) == run(5))
        #expect(run(5) != run(6))
    }

    // MARK: Batches

    @Test func batchesArePureFunctionsOfSeedAndStep() {
        let a = MNTPData(corpus: corpus(blocks: 40, length: 16), masking: masking, seed: 9)
        let b = MNTPData(corpus: corpus(blocks: 40, length: 16), masking: masking, seed: 9)
        let batch = a.batch(step: 7, batchSize: 4)
        let again = b.batch(step: 7, batchSize: 4)
        #expect(batch.tokens.ids == again.tokens.ids && batch.labels == again.labels && batch.blocks == again.blocks)
        #expect(batch.tokens.batch == 4 && batch.tokens.length == 16 && batch.tokens.valid == Array(repeating: 0..<16, count: 4))
        #expect(batch.labels.count == batch.tokens.ids.count && batch.labels.contains { $0 != -100 })
        #expect(a.batch(step: 8, batchSize: 4).blocks != batch.blocks)
        let otherSeed = MNTPData(corpus: corpus(blocks: 40, length: 16), masking: masking, seed: 10).batch(step: 7, batchSize: 4)
        #expect(otherSeed.blocks != batch.blocks)
    }

    @Test func epochsVisitEveryTrainingBlockOnceAndWrap() {
        let data = MNTPData(corpus: corpus(blocks: 40, length: 16), masking: masking)
        #expect(data.trainingBlocks == 2..<40 && data.stepsPerEpoch(batchSize: 3) == 13)
        let epoch0 = (0..<13).map { data.batch(step: $0, batchSize: 3) }
        #expect(epoch0.flatMap(\.blocks) == data.order(epoch: 0))
        #expect(epoch0.flatMap(\.blocks).sorted() == Array(data.trainingBlocks))
        #expect(epoch0.last!.tokens.batch == 2)
        // Step 13 starts epoch 1: a new order, and every block masked afresh.
        let next = data.batch(step: 13, batchSize: 3)
        #expect(next.blocks == Array(data.order(epoch: 1).prefix(3)) && data.order(epoch: 1) != data.order(epoch: 0))
        let block = next.blocks[0], length = 16
        let earlier = epoch0.first { $0.blocks.contains(block) }!
        let row = earlier.blocks.firstIndex(of: block)!
        #expect(Array(next.labels[0..<length]) != Array(earlier.labels[row * length..<(row + 1) * length]))
    }

    @Test func specialTokensAreNeverTargets() {
        let data = MNTPData(corpus: corpus(blocks: 20, length: 8), masking: MNTPMasking(maskTokenID: 7, vocabularySize: 50_000, probability: 1))
        let batch = data.batch(step: 0, batchSize: 5)
        for (i, label) in batch.labels.enumerated() {
            #expect((label == -100) == (i % 8 == 0))
            if i % 8 == 0 { #expect(batch.tokens.ids[i] == data.corpus.ids[data.corpus.block(batch.blocks[i / 8]).lowerBound]) }
        }
    }

    @Test(arguments: [(1, 0.05, 0), (2, 0.05, 1), (10, 0.05, 1), (40, 0.05, 2), (50, 0.05, 2), (70, 0.05, 4), (100, 0.05, 5), (100, 0.0, 0), (3, 1.0, 2)])
    func holdsOutTheFirstBlocks(blocks: Int, fraction: Double, held: Int) {
        let data = MNTPData(corpus: corpus(blocks: blocks, length: 4), masking: masking, validationFraction: fraction)
        #expect(data.validationBlocks == 0..<held && data.trainingBlocks == held..<blocks)
    }

    @Test func validationBatchesAreFixed() {
        let data = MNTPData(corpus: corpus(blocks: 100, length: 8), masking: masking)
        let batches = data.validationBatches(batchSize: 2)
        #expect(batches.map(\.blocks) == [[0, 1], [2, 3], [4]])
        let again = data.validationBatches(batchSize: 2)
        #expect(batches.map(\.labels) == again.map(\.labels) && batches.map(\.tokens.ids) == again.map(\.tokens.ids))
        #expect(Set(data.order(epoch: 0)).isDisjoint(with: 0..<5))
    }

    @Test func targetsPairEachLabelWithThePrecedingOutput() {
        let data = MNTPData(corpus: corpus(blocks: 20, length: 8), masking: MNTPMasking(maskTokenID: 7, vocabularySize: 50_000, probability: 0.5))
        let batch = data.batch(step: 0, batchSize: 4)
        let targets = batch.targets
        let counted = batch.labels.indices.filter { batch.labels[$0] != -100 && $0 % 8 != 0 }
        #expect(targets == counted.map { MNTPTarget(outputRow: $0 - 1, label: batch.labels[$0]) })

        var accuracy = MNTPAccuracy()
        #expect(accuracy.value == 0)
        accuracy.add(predictions: targets.map(\.label), targets: targets)
        accuracy.add(predictions: targets.enumerated().map { $0.offset.isMultiple(of: 2) ? $0.element.label : -1 }, targets: targets)
        #expect(accuracy.total == 2 * targets.count && accuracy.correct == targets.count + (targets.count + 1) / 2)
    }
}
