import Foundation

/// HF's BPE model: words are split into characters (falling back to `<0xNN>` byte tokens
/// or `<unk>`), then the lowest-ranked adjacent pair is merged until no merge applies.
final class BPEModel: Sendable {
    let vocabulary: ByteStringTable
    /// Token text by id (HF's `vocab_r`); nil for ids the vocabulary skips.
    let tokens: [String?]
    /// Packed `(left << 32 | right)` → packed `(rank << 32 | merged id)`.
    private let merges: PairTable
    let unknownId: Int32?
    let unknownToken: String?
    private let fuseUnknown: Bool
    /// Ids of `<0x00>`…`<0xFF>` (-1 where missing), or nil without byte fallback.
    private let byteFallback: [Int32]?
    private let ignoreMerges: Bool
    /// Gemma 4 in llama.cpp: a word made only of newlines that is a token is not merged.
    private let keepsNewlineRuns: Bool
    private let cache = WordCache()

    var usesByteFallback: Bool { byteFallback != nil }

    static let maxTokenId = 1 << 24

    init(_ node: JSONNode) throws {
        let type = try node.typeTag()
        guard type == "BPE" else { throw node.unsupported(type, supported: ["BPE"]) }
        if let dropout = try node.optional("dropout"), try dropout.double() > 0 {
            throw dropout.error("\(try dropout.double()) is not supported (BPE dropout is random; use null or 0)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let affix = try node.optional(key), try !affix.string().isEmpty {
                throw affix.error("is not supported (no byte-level or SentencePiece BPE uses it)")
            }
        }

        let (vocabulary, tokens) = try readVocabulary(try node.required("vocab"))
        self.vocabulary = vocabulary
        self.tokens = tokens
        merges = try Self.parseMerges(try node.required("merges"), vocabulary: vocabulary)

        unknownToken = try node.string("unk_token")
        unknownId = unknownToken.flatMap { vocabulary.lookup($0) }
        fuseUnknown = try node.bool("fuse_unk", default: false)
        ignoreMerges = try node.bool("ignore_merges", default: false)
        keepsNewlineRuns = false
        if try node.bool("byte_fallback", default: false) {
            byteFallback = (0..<256).map { byte in
                vocabulary.lookup(String(format: "<0x%02X>", byte)) ?? -1
            }
        } else {
            byteFallback = nil
        }
    }

    /// Builds a model from an already resolved vocabulary (a GGUF file's token list): `tokens[id]`
    /// is the text of token `id`, `vocabulary` maps each text back to its id, and `merges` maps
    /// packed `(left << 32 | right)` id pairs to packed `(rank << 32 | merged id)`. Ranks may
    /// repeat: equal ranks merge leftmost first, which is how SentencePiece orders merges whose
    /// pieces score the same.
    init(tokens: [String], vocabulary: ByteStringTable, merges: PairTable, unknownId: Int32?, byteFallback: Bool,
         ignoreMerges: Bool, keepsNewlineRuns: Bool = false) {
        self.vocabulary = vocabulary
        self.tokens = tokens
        self.merges = merges
        self.unknownId = unknownId
        unknownToken = unknownId.map { tokens[Int($0)] }
        fuseUnknown = false
        self.ignoreMerges = ignoreMerges
        self.keepsNewlineRuns = keepsNewlineRuns
        self.byteFallback = byteFallback
            ? (0..<256).map { vocabulary.lookup(String(format: "<0x%02X>", $0)) ?? -1 }
            : nil
    }

    /// Merges come as `"left right"` strings (tokenizers < 0.20) or `["left", "right"]` pairs.
    private static func parseMerges(_ node: JSONNode, vocabulary: ByteStringTable) throws -> PairTable {
        guard case .array(let lines) = node.value else {
            throw node.error("must be an array, found \(node.value.typeName)")
        }
        var table = PairTable(minimumCapacity: lines.count)
        var scratch: [UInt8] = []
        var rank: UInt64 = 0
        for (index, line) in lines.enumerated() {
            func entry() -> JSONNode { JSONNode(line, file: node.file, path: "\(node.path)[\(index)]") }
            let left: String
            let right: String
            switch line {
            case .string(let text):
                // Split on the byte, not on Characters: a space followed by a combining mark
                // or emoji modifier is a single Character.
                if text.utf8.starts(with: "#version".utf8) { continue }
                let parts = text.utf8.split(separator: 0x20, omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw entry().error("\"\(text)\" must be two tokens separated by one space")
                }
                left = String(decoding: parts[0], as: UTF8.self)
                right = String(decoding: parts[1], as: UTF8.self)
            case .array(let pair):
                guard pair.count == 2, case .string(let first) = pair[0], case .string(let second) = pair[1] else {
                    throw entry().error("must be a pair of strings")
                }
                left = first
                right = second
            default:
                throw entry().error("must be a string or a pair of strings, found \(line.typeName)")
            }
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: left.utf8)
            scratch.append(contentsOf: right.utf8)
            guard let leftId = vocabulary.lookup(left), let rightId = vocabulary.lookup(right),
                  let mergedId = vocabulary.lookup(scratch)
            else {
                let missing = vocabulary.lookup(left) == nil ? left : vocabulary.lookup(right) == nil ? right : left + right
                throw entry().error("uses \"\(missing)\", which is not in model.vocab")
            }
            table.insert(UInt64(UInt32(leftId)) << 32 | UInt64(UInt32(rightId)), rank << 32 | UInt64(UInt32(mergedId)))
            rank += 1
        }
        return table
    }

    /// Appends the ids for one pre-tokenized word.
    func encode(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        guard !word.isEmpty else { return }
        if cache.lookup(word, into: &out) { return }
        if ignoreMerges || (keepsNewlineRuns && word.allSatisfy { $0 == 0x0A }), let id = vocabulary.lookup(word) {
            out.append(id)
            return
        }
        var symbols = initialSymbols(word)
        merge(&symbols)
        cache.insert(word, symbols)
        out.append(contentsOf: symbols)
    }

    /// One symbol per character, as HF's `merge_word` builds them.
    private func initialSymbols(_ word: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        var pendingUnknown = false
        var index = 0
        while index < word.count {
            let length = decodeScalar(word, index).length
            let character = UnsafeBufferPointer(rebasing: word[index..<index + length])
            if let id = vocabulary.lookup(character) {
                if pendingUnknown, let unknownId {
                    symbols.append(unknownId)
                    pendingUnknown = false
                }
                symbols.append(id)
            } else if let byteFallback, character.allSatisfy({ byteFallback[Int($0)] >= 0 }) {
                // HF emits these before a still-pending <unk>; kept for identical output.
                for byte in character { symbols.append(byteFallback[Int(byte)]) }
            } else if let unknownId {
                if pendingUnknown && !fuseUnknown { symbols.append(unknownId) }
                pendingUnknown = true
            }
            index += length
        }
        if pendingUnknown, let unknownId { symbols.append(unknownId) }
        return symbols
    }

    /// Repeatedly merges the adjacent pair with the lowest rank (leftmost on ties), using a
    /// min-heap of `(rank << 32 | position)` entries over a doubly linked list of symbols.
    /// Entries made stale by earlier merges are recognized and skipped when popped.
    private func merge(_ symbols: inout [Int32]) {
        let count = symbols.count
        guard count > 1 else { return }
        if count == 2 {
            if let merged = merges.lookup(UInt64(UInt32(symbols[0])) << 32 | UInt64(UInt32(symbols[1]))) {
                symbols = [Int32(truncatingIfNeeded: merged)]
            }
            return
        }
        var next = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = index + 1 < count ? Int32(index + 1) : -1 }
            initialized = count
        }
        var previous = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = Int32(index - 1) }
            initialized = count
        }
        var heap = MinHeap()
        for index in 0..<count - 1 {
            if let merged = merges.lookup(UInt64(UInt32(symbols[index])) << 32 | UInt64(UInt32(symbols[index + 1]))) {
                heap.push(merged & 0xFFFF_FFFF_0000_0000 | UInt64(index))
            }
        }
        while let top = heap.pop() {
            let position = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            guard symbols[position] >= 0 else { continue }
            let right = Int(next[position])
            guard right >= 0,
                  let merged = merges.lookup(UInt64(UInt32(symbols[position])) << 32 | UInt64(UInt32(symbols[right]))),
                  merged >> 32 == rank
            else { continue }
            symbols[position] = Int32(truncatingIfNeeded: merged)
            symbols[right] = -1
            let after = Int(next[right])
            next[position] = Int32(after)
            if after >= 0 { previous[after] = Int32(position) }
            let before = Int(previous[position])
            if before >= 0,
               let pair = merges.lookup(UInt64(UInt32(symbols[before])) << 32 | UInt64(UInt32(symbols[position]))) {
                heap.push(pair & 0xFFFF_FFFF_0000_0000 | UInt64(before))
            }
            if after >= 0,
               let pair = merges.lookup(UInt64(UInt32(symbols[position])) << 32 | UInt64(UInt32(symbols[after]))) {
                heap.push(pair & 0xFFFF_FFFF_0000_0000 | UInt64(position))
            }
        }
        symbols.removeAll { $0 < 0 }
    }
}

/// Binary min-heap of packed `(rank, position)` keys.
private struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(_ item: UInt64) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < items.count else { break }
                let right = left + 1
                let child = right < items.count && items[right] < items[left] ? right : left
                guard items[child] < items[parent] else { break }
                items.swapAt(child, parent)
                parent = child
            }
        }
        return top
    }
}

/// Results of recent words, shared by all threads using the tokenizer. Natural text repeats
/// a small set of words, so most lookups skip the merge loop entirely. The cache is split
/// into independently locked shards so that threads encoding at once rarely wait on each other.
private final class WordCache: Sendable {
    private static let shardCount = 16
    private static let maxWordBytes = 128
    private let shards = (0..<WordCache.shardCount).map { _ in Shard() }

    private func shard(_ word: UnsafeBufferPointer<UInt8>) -> Shard {
        shards[Int(hashBytes(word.baseAddress, word.count) >> 60) & (Self.shardCount - 1)]
    }

    func lookup(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) -> Bool {
        guard word.count <= Self.maxWordBytes else { return false }
        return shard(word).lookup(word, into: &out)
    }

    func insert(_ word: UnsafeBufferPointer<UInt8>, _ tokens: [Int32]) {
        guard word.count <= Self.maxWordBytes else { return }
        shard(word).insert(word, tokens)
    }

    private final class Shard: @unchecked Sendable {
        // Every access to the mutable state below happens under `lock`.
        private let lock = NSLock()
        private var table = ByteStringTable(minimumCapacity: 1024)
        private var spans: [(start: Int32, count: Int32)] = []
        private var ids: [Int32] = []
        private static let capacity = 8192

        func lookup(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) -> Bool {
            lock.lock()
            defer { lock.unlock() }
            guard let entry = table.lookup(word) else { return false }
            let span = spans[Int(entry)]
            out.append(contentsOf: ids[Int(span.start)..<Int(span.start + span.count)])
            return true
        }

        func insert(_ word: UnsafeBufferPointer<UInt8>, _ tokens: [Int32]) {
            lock.lock()
            defer { lock.unlock() }
            if table.count >= Self.capacity {
                table = ByteStringTable(minimumCapacity: 1024)
                spans.removeAll(keepingCapacity: true)
                ids.removeAll(keepingCapacity: true)
            }
            guard table.lookup(word) == nil else { return }
            table.insert(word, value: Int32(spans.count))
            spans.append((Int32(ids.count), Int32(tokens.count)))
            ids.append(contentsOf: tokens)
        }
    }
}
