/// Which workers are in the cluster, decided from events and explicit instants, with no I/O:
/// the coordinator's actor feeds it and carries out what it returns.
///
/// A member's status only moves forward — joining → up → leaving → down → removed — so a worker
/// declared down never comes back under the same incarnation; a restarted process registers anew
/// with a new incarnation and gets a new id.
public struct Membership: Sendable {
    public enum Status: Int, Comparable, Sendable {
        case joining, up, leaving, down, removed
        public static func < (a: Status, b: Status) -> Bool { a.rawValue < b.rawValue }
    }

    public struct Member: Sendable, Equatable {
        public let id: WorkerID
        public let incarnation: UInt64
        public internal(set) var status: Status
        public internal(set) var lastHeard: ContinuousClock.Instant
    }

    public enum Registration: Equatable, Sendable {
        /// A new member (a first registration, or a restarted process).
        case joined(WorkerID)
        /// The same process registering again (a lost welcome): same id.
        case alreadyMember(WorkerID)
        /// A restarted process whose former incarnation was still counted: it is now down.
        case replaced(old: WorkerID, new: WorkerID)
    }

    public private(set) var members: [WorkerID: Member] = [:]
    private var nextID: UInt32 = 1
    /// Registrations by (worker name, incarnation): tells a retry from a restart.
    private var byName: [String: WorkerID] = [:]
    /// Members not yet down, in id order: kept as statuses move, since the scheduler walks it
    /// after every message (a sort of a thousand ids each time showed in profiles).
    public private(set) var alive: [WorkerID] = []

    public init() {}

    /// Registers a worker by its self-chosen name and its process incarnation.
    public mutating func register(name: String, incarnation: UInt64, at now: ContinuousClock.Instant) -> Registration {
        if let existing = byName[name], let member = members[existing], member.status < .down {
            if member.incarnation == incarnation {
                members[existing]?.lastHeard = now
                return .alreadyMember(existing)
            }
            moveForward(existing, to: .down)
            let id = admit(name: name, incarnation: incarnation, at: now)
            return .replaced(old: existing, new: id)
        }
        return .joined(admit(name: name, incarnation: incarnation, at: now))
    }

    private mutating func admit(name: String, incarnation: UInt64, at now: ContinuousClock.Instant) -> WorkerID {
        let id = WorkerID(nextID)
        nextID += 1
        members[id] = Member(id: id, incarnation: incarnation, status: .joining, lastHeard: now)
        alive.append(id)  // ids only grow: still sorted
        byName[name] = id
        return id
    }

    /// The member has what it needs (e.g. current weights) and may take every kind of job.
    public mutating func markUp(_ id: WorkerID) { moveForward(id, to: .up) }

    /// The member announced it is leaving: no new jobs; its running ones may finish.
    public mutating func markLeaving(_ id: WorkerID) { moveForward(id, to: .leaving) }

    /// Records a heartbeat; false when the member is unknown or already down (its messages are stale).
    public mutating func heartbeat(_ id: WorkerID, at now: ContinuousClock.Instant) -> Bool {
        guard let m = members[id], m.status < .down else { return false }
        members[id]?.lastHeard = max(m.lastHeard, now)
        return true
    }

    /// Declares down every member not heard from within `timeout`; returns them in id order.
    public mutating func expire(now: ContinuousClock.Instant, timeout: Duration) -> [WorkerID] {
        let late = members.values.filter { $0.status < .down && now - $0.lastHeard > timeout }.map(\.id).sorted()
        for id in late { moveForward(id, to: .down) }
        return late
    }

    /// Marks a member down at once (its connection failed, or it was replaced).
    public mutating func markDown(_ id: WorkerID) { moveForward(id, to: .down) }

    /// Members that may be given jobs, in id order (the order ranks are assigned in).
    public var available: [WorkerID] { members.values.filter { $0.status == .up }.map(\.id).sorted() }

    public func status(of id: WorkerID) -> Status? { members[id]?.status }

    /// Applies a forward move; a backward or sideways move is ignored.
    private mutating func moveForward(_ id: WorkerID, to status: Status) {
        guard let current = members[id]?.status, current < status else { return }
        members[id]?.status = status
        if current < .down, status >= .down, let at = alive.firstIndex(of: id) { alive.remove(at: at) }
    }
}
