/// A safetensors file that cannot be used, and why; names the file and, where there is one, the
/// tensor.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let tensor: String?
    public let message: String

    public var description: String {
        tensor.map { "\(file): tensor \($0): \(message)" } ?? "\(file): \(message)"
    }
}
