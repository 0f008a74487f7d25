import Crypto

extension Digest {
    /// The digest as lowercase hex, two digits a byte (what `String(format: "%02x")` gives, at a
    /// fraction of its cost: label keys are made thousands of times a phase).
    var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(Self.byteCount * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
