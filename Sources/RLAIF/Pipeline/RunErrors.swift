/// A run that stopped when asked (SIGTERM, Ctrl-C) at a checkpoint it wrote, so that `rlaif
/// launch` or `rlaif resume` on its directory continues it.
public struct RunStopped: Error, CustomStringConvertible, Sendable {
    /// The checkpoint written on the way out (nil: stopped before the first step).
    public let checkpoint: String?
    public let phase: String
    public init(checkpoint: String?, phase: String) { (self.checkpoint, self.phase) = (checkpoint, phase) }
    public var description: String {
        checkpoint.map { "stopped at a checkpoint (\($0), phase \(phase))" } ?? "stopped before the first checkpoint"
    }
}

/// Why a run cannot go on, in words for the user.
public struct RunError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
