import Crypto
import Tensor

extension Digest {
    /// The digest as lowercase hex (what `String(format: "%02x")` gave byte by byte, at a fraction
    /// of its cost: label keys are made thousands of times a phase).
    var hex: String { Tensor.hex(bytes: self) }
}
