/// A worker as the coordinator numbers it (assigned at registration, never reused in a run).
public struct WorkerID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public static func < (a: WorkerID, b: WorkerID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "w\(rawValue)" }
}

/// A unit of work: a rollout batch, a labeling batch or a gradient micro-batch. Ids are assigned in
/// a deterministic order by the run, so they double as the fixed order of every reduction.
public struct JobID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: JobID, b: JobID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "job\(rawValue)" }
}

/// Jobs of one kind in the current batch: waiting for a worker, and out with one.
public struct JobOccupancy: Sendable, Equatable {
    public var queued = 0
    public var running = 0
    public init(queued: Int = 0, running: Int = 0) {
        self.queued = queued
        self.running = running
    }
}
