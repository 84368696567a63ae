import Testing
@testable import UnmaskTokenizers

@Suite struct ByteLevelTests {
    @Test func mapsEveryByteToADistinctPrintableCharacter() {
        let scalars = ByteLevel.scalarForByte
        #expect(scalars.count == 256)
        #expect(Set(scalars).count == 256)
        for byte in 0x21...0x7E { #expect(scalars[byte] == UInt32(byte)) }
        for byte in 0xA1...0xAC { #expect(scalars[byte] == UInt32(byte)) }
        for byte in 0xAE...0xFF { #expect(scalars[byte] == UInt32(byte)) }
        // GPT-2's well-known spellings: space Ġ, newline Ċ, tab ĉ, NUL Ā, soft hyphen Ń.
        #expect(scalars[0x20] == 0x120)
        #expect(scalars[0x0A] == 0x10A)
        #expect(scalars[0x09] == 0x109)
        #expect(scalars[0x00] == 0x100)
        #expect(scalars[0x7F] == 0x121)
        #expect(scalars[0xAD] == 0x143)
    }

    @Test func mappingRoundTrips() {
        let bytes = (0..<256).map(UInt8.init) + Array("héllo wörld 😀\n\t".utf8)
        var mapped: [UInt8] = []
        bytes.withUnsafeBufferPointer { ByteLevel.map($0, 0..<bytes.count, into: &mapped) }
        let token = String(decoding: mapped, as: UTF8.self)
        #expect(token.unicodeScalars.count == bytes.count)
        #expect(ByteLevel.unmap(token) == bytes)
        #expect(ByteLevel.unmap("ĠhelloĊ") == Array(" hello\n".utf8))
    }

    @Test func tokensOutsideTheAlphabetAreNotUnmapped() {
        #expect(ByteLevel.unmap("hello world") == nil)  // a raw space is not in the alphabet
        #expect(ByteLevel.unmap("日本") == nil)
        #expect(ByteLevel.unmap("") == [])
    }
}
