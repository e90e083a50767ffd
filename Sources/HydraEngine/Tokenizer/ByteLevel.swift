/// GPT-2's reversible map between bytes and printable characters, used by byte-level BPE:
/// printable bytes stand for themselves, the rest map to U+0100 onwards.
enum ByteLevel {
    static let byteToCharacter: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var mapped = printable
        var next = 0
        for byte in 0..<256 where !printable.contains(byte) {
            printable.append(byte)
            mapped.append(256 + next)
            next += 1
        }
        var table = [Character](repeating: " ", count: 256)
        for (byte, scalar) in zip(printable, mapped) { table[byte] = Character(Unicode.Scalar(UInt32(scalar))!) }
        return table
    }()

    static let characterToByte: [Character: UInt8] = {
        var inverse: [Character: UInt8] = [:]
        for (byte, character) in byteToCharacter.enumerated() { inverse[character] = UInt8(byte) }
        return inverse
    }()

    static func encode(_ text: Substring) -> String {
        String(text.utf8.map { byteToCharacter[Int($0)] })
    }

    /// The bytes a byte-level token string stands for; nil if it holds a character outside the map.
    static func decode(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        for character in token {
            guard let byte = characterToByte[character] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
