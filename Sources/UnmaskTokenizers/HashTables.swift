import Foundation

/// Fast non-cryptographic hash of a byte string (multiply-xorshift over 8-byte words).
/// Swift's `Hasher` is SipHash and `String` hashing normalizes Unicode; both are far slower
/// than needed for per-word lookups.
@inline(__always)
func hashBytes(_ base: UnsafeRawPointer?, _ count: Int) -> UInt64 {
    var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: count)
    guard let base else { return hash }
    var offset = 0
    while offset + 8 <= count {
        let word = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        hash = (hash ^ word) &* 0xFF51_AFD7_ED55_8CCD
        hash ^= hash >> 32
        offset += 8
    }
    if offset < count {
        var word: UInt64 = 0
        var shift: UInt64 = 0
        while offset < count {
            word |= UInt64(base.load(fromByteOffset: offset, as: UInt8.self)) << shift
            shift += 8
            offset += 1
        }
        hash = (hash ^ word) &* 0xC4CE_B9FE_1A85_EC53
    }
    hash ^= hash >> 33
    hash = hash &* 0xFF51_AFD7_ED55_8CCD
    hash ^= hash >> 33
    return hash
}

/// Open-addressing map from byte strings to `Int32`, with all keys stored back to back in
/// one buffer. Lookups take a borrowed buffer, so probing a word costs no allocation.
struct ByteStringTable: Sendable {
    private var keyBytes: [UInt8] = []
    private var keyStart: [Int] = []
    private var keyHash: [UInt64] = []
    private(set) var values: [Int32] = []
    /// Entry index + 1 per slot; 0 marks an empty slot.
    private var slots: [Int32]
    private var mask: Int

    init(minimumCapacity: Int = 16) {
        var size = 16
        while size < minimumCapacity * 2 { size <<= 1 }
        slots = Array(repeating: 0, count: size)
        mask = size - 1
    }

    var count: Int { values.count }

    /// Inserts or, like a Rust `HashMap`, overwrites the value of an existing key.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, value: Int32) {
        let hash = hashBytes(key.baseAddress, key.count)
        if let entry = find(key, hash: hash) {
            values[entry] = value
            return
        }
        if (values.count + 1) * 2 > slots.count { grow() }
        keyStart.append(keyBytes.count)
        keyBytes.append(contentsOf: key)
        keyHash.append(hash)
        values.append(value)
        place(entry: values.count - 1, hash: hash)
    }

    mutating func insert(_ key: String, value: Int32) {
        var key = key
        key.withUTF8 { insert($0, value: value) }
    }

    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        find(key, hash: hashBytes(key.baseAddress, key.count)).map { values[$0] }
    }

    func lookup(_ key: [UInt8]) -> Int32? {
        key.withUnsafeBufferPointer { lookup($0) }
    }

    func lookup(_ key: String) -> Int32? {
        var key = key
        return key.withUTF8 { lookup($0) }
    }

    private func find(_ key: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Int? {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let stored = Int(slots[slot])
            if stored == 0 { return nil }
            let entry = stored - 1
            if keyHash[entry] == hash {
                let start = keyStart[entry]
                let end = entry + 1 < keyStart.count ? keyStart[entry + 1] : keyBytes.count
                if end - start == key.count {
                    let equal = keyBytes.withUnsafeBufferPointer { stored in
                        key.count == 0 || memcmp(stored.baseAddress! + start, key.baseAddress!, key.count) == 0
                    }
                    if equal { return entry }
                }
            }
            slot = (slot + 1) & mask
        }
    }

    private mutating func place(entry: Int, hash: UInt64) {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(entry + 1)
    }

    private mutating func grow() {
        slots = Array(repeating: 0, count: slots.count * 2)
        mask = slots.count - 1
        for entry in 0..<values.count { place(entry: entry, hash: keyHash[entry]) }
    }
}

/// Open-addressing map from `UInt64` to `UInt64`, used for BPE merges keyed by a packed
/// pair of token ids and for the added-token trie's edges.
struct PairTable: Sendable {
    private static let empty = UInt64.max
    private var keys: [UInt64]
    private var values: [UInt64]
    private var shift: UInt64
    private(set) var count = 0

    init(minimumCapacity: Int) {
        var bits: UInt64 = 4
        while (1 << bits) < minimumCapacity * 2 { bits += 1 }
        keys = Array(repeating: Self.empty, count: 1 << bits)
        values = Array(repeating: 0, count: 1 << bits)
        shift = 64 - bits
    }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// Inserts or overwrites. `key` must not be `UInt64.max`.
    mutating func insert(_ key: UInt64, _ value: UInt64) {
        if (count + 1) * 2 > keys.count { grow() }
        let mask = keys.count - 1
        var slot = home(key)
        while keys[slot] != Self.empty {
            if keys[slot] == key {
                values[slot] = value
                return
            }
            slot = (slot + 1) & mask
        }
        keys[slot] = key
        values[slot] = value
        count += 1
    }

    @inline(__always)
    func lookup(_ key: UInt64) -> UInt64? {
        let mask = keys.count - 1
        var slot = home(key)
        while true {
            let stored = keys[slot]
            if stored == key { return values[slot] }
            if stored == Self.empty { return nil }
            slot = (slot + 1) & mask
        }
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        keys = Array(repeating: Self.empty, count: oldKeys.count * 2)
        values = Array(repeating: 0, count: oldKeys.count * 2)
        shift -= 1
        count = 0
        for (key, value) in zip(oldKeys, oldValues) where key != Self.empty { insert(key, value) }
    }
}
