/// Why a received message was refused. Names the frame and the field; never carries the payload.
public struct WireError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: String, Sendable {
        case badMagic, unsupportedVersion, unknownKind, truncated, trailingBytes, badValue
        case tooLarge, frameCountMismatch, tensorSizeMismatch, badUTF8
    }

    public let code: Code
    /// Which frame: 0 is the control frame, 1… the tensor frames.
    public let frame: Int
    /// Which field, e.g. `assign.items` or `tensor[0].shape`.
    public let field: String
    public let detail: String

    public var description: String { "\(code.rawValue) in frame \(frame), field \(field): \(detail)" }
}
