import Foundation
import Logging
import Models
import Protocol
import RLAIF
import Tensor

#if canImport(Glibc)
    import Glibc
#endif

/// A worker process: registers with the coordinator, heartbeats on its own task (compute runs on
/// the engine thread and can never delay it), and runs the jobs it is assigned one at a time —
/// rollouts and gradient steps on its model replica, labeling on its labeler.
public final class WorkerNode: Sendable {
    public struct Options: Sendable {
        public var coordinator: String
        public var name: String
        public var security: ConnectorSecurity
        /// Overrides the run's `workers.ring_bind` (e.g. an address in this host's namespace).
        public var ringBind: String?
        /// Whether ring slices to a successor on this host go through shared memory.
        public var ringSharedMemory: Bool
        /// Whether, with shared memory, a wait for the predecessor's slice watches its segment's
        /// doorbell (false: only the location message through libzmq wakes it; for comparison).
        public var ringDoorbell: Bool
        /// How long hellos go unanswered before the worker gives up.
        public var registrationWait: Duration
        public var role: Wire.WorkerRole
        public init(
            coordinator: String, name: String, security: ConnectorSecurity = .open, ringBind: String? = nil,
            ringSharedMemory: Bool = true, ringDoorbell: Bool = true, registrationWait: Duration = .seconds(60),
            role: Wire.WorkerRole = .both
        ) {
            self.role = role
            self.ringDoorbell = ringDoorbell
            self.ringSharedMemory = ringSharedMemory
            self.coordinator = coordinator
            self.name = name
            self.security = security
            self.ringBind = ringBind
            self.registrationWait = registrationWait
        }
    }

    public enum Exit: Sendable, Equatable {
        case shutdown(String)
        case rejected(String)
        /// No answer to any hello within the registration wait (down, unreachable, or CURVE
        /// refused this worker's key: a refusal is silent by design).
        case noAnswer
        case coordinatorLost
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger = Logger(label: "rlaif.worker")) {
        self.options = options
        self.logger = logger
    }

    /// Runs until the coordinator says shutdown, rejects this worker, or stays silent too long.
    public func run() async throws -> Exit {
        let connection = try Endpoint.connect(to: options.coordinator, security: options.security, logger: logger)
        defer { connection.close() }
        let incarnation = UInt64.random(in: 1...UInt64.max)
        let inbox = MessageInbox()
        let reader = Task {
            for await inbound in connection.incoming { await inbox.deliver(inbound.message) }
            await inbox.close()
        }
        defer { reader.cancel() }

        // The ring listener's address goes into the hello, so it exists before the run's settings
        // arrive: it binds where `--ring-bind` says, else on loopback for a loopback coordinator and
        // on every interface otherwise (advertised at the address that routes to the coordinator).
        let ringBind = options.ringBind ?? Self.defaultRingBind(coordinator: options.coordinator)
        let ring = try RingLink(
            bind: ringBind, keyPair: options.security.keyPair,
            sharedSegmentBytes: options.ringSharedMemory ? RingPort.defaultSharedSegmentBytes : 0,
            followsDoorbell: options.ringDoorbell, logger: logger)
        defer { ring.close() }
        let reachableAt =
            RouteAddress.towards(host: Self.host(of: options.coordinator)) ?? ProcessInfo.processInfo.hostName
        let hello = Wire.Hello(
            workerName: options.name, host: ProcessInfo.processInfo.hostName, pid: UInt32(getpid()),
            threads: UInt16(clamping: Engine.shared.threads), incarnation: incarnation,
            ringEndpoint: ring.advertised(host: reachableAt), role: options.role)

        let w: Wire.Welcome
        switch await Self.register(hello, over: connection, inbox: inbox, wait: options.registrationWait) {
        case .success(let welcome): w = welcome
        case .failure(let exit): return exit.reason
        }
        ring.authorize(w.ringKeys)
        return try await work(welcome: w, connection: connection, inbox: inbox, ring: ring)
    }

    /// A registered worker's life: heartbeats, jobs in order, the labeler budget's grants, until
    /// the coordinator says shutdown or falls silent.
    private func work(welcome w: Wire.Welcome, connection: Endpoint, inbox: MessageInbox, ring: RingLink) async throws
        -> Exit
    {
        let settings = try RunSettings.fromJSON(w.setup)
        logger.info("worker \(w.workerID) registered in run \(w.runName)")
        let gate = CoordinatorLabelGate(workerID: w.workerID, connection: connection, limits: settings.labeler.budget)
        let executor = try JobExecutor(
            settings: settings, workerID: w.workerID, ring: ring,
            labelerGate: settings.labeler.budget == nil ? nil : gate, logger: logger)
        // Each labeler answer goes to the coordinator's answer journal as it arrives.
        executor.jobs.answers.connect { [workerID = w.workerID] entries in
            connection.post(
                .labelAnswers(
                    .init(workerID: workerID, keys: entries.map(\.key), bodies: entries.map(\.answer.wireBody))))
        }

        let heartbeat = Task {
            var sequence: UInt64 = 0
            while !Task.isCancelled {
                sequence += 1
                connection.post(.heartbeat(.init(workerID: w.workerID, sequence: sequence)))
                try? await Task.sleep(for: .milliseconds(Int(w.heartbeatIntervalMilliseconds)))
            }
        }
        defer { heartbeat.cancel() }

        // Jobs run in order on one task; the message loop stays free for shutdown.
        let (jobs, jobQueue) = AsyncStream<Wire.Message>.makeStream()
        let runner = Task {
            for await message in jobs {
                for reply in await executor.handle(message) { await connection.send(reply) }
            }
        }
        defer {
            jobQueue.finish()
            runner.cancel()
        }
        let exit = await serve(
            inbox, jobs: jobQueue, gate: gate, silence: .milliseconds(Int(w.heartbeatTimeoutMilliseconds)))
        await gate.close()
        return exit
    }

    /// Why a registration ended without a welcome.
    struct RegistrationEnded: Error {
        let reason: Exit
    }

    /// Says hello until welcomed (the coordinator may not be up yet), for at most `wait`.
    static func register(
        _ hello: Wire.Hello, over connection: Endpoint, inbox: MessageInbox, wait: Duration
    ) async -> Result<Wire.Welcome, RegistrationEnded> {
        let deadline = ContinuousClock.now + wait
        while true {
            await connection.send(.hello(hello))
            switch await inbox.next(within: .seconds(1)) {
            case .welcome(let w)?: return .success(w)
            case .reject(let r)?: return .failure(RegistrationEnded(reason: .rejected(r.reason)))
            default:
                if ContinuousClock.now > deadline { return .failure(RegistrationEnded(reason: .noAnswer)) }
            }
        }
    }

    /// Hands jobs and weights to the job queue until the coordinator says shutdown or has been
    /// silent for `silence`.
    private func serve(
        _ inbox: MessageInbox, jobs jobQueue: AsyncStream<Wire.Message>.Continuation, gate: CoordinatorLabelGate,
        silence: Duration
    ) async -> Exit {
        var lastHeard = ContinuousClock.now
        while true {
            guard let message = await inbox.next(within: .milliseconds(500)) else {
                if ContinuousClock.now - lastHeard > silence { return .coordinatorLost }
                continue
            }
            lastHeard = ContinuousClock.now
            switch message {
            case .shutdown(let s): return .shutdown(s.reason)
            case .heartbeat: continue
            case .assign, .weights, .weightsRequest: jobQueue.yield(message)
            case .labelBudgetGrant(let grant): await gate.deliver(grant)
            default: logger.debug("ignoring \(message.kind) from the coordinator")
            }
        }
    }

    static func host(of endpoint: String) -> String {
        // tcp://HOST:PORT → HOST
        guard let scheme = endpoint.range(of: "://") else { return "127.0.0.1" }
        let rest = endpoint[scheme.upperBound...]
        return rest.lastIndex(of: ":").map { String(rest[..<$0]) } ?? String(rest)
    }

    static func defaultRingBind(coordinator: String) -> String {
        let host = host(of: coordinator)
        return host == "127.0.0.1" || host == "localhost" ? "tcp://127.0.0.1:0" : "tcp://0.0.0.0:0"
    }
}

/// Messages from the coordinator, taken one at a time with a timeout (nil: nothing arrived).
actor MessageInbox {
    private var queued: [Wire.Message] = []
    private var waiter: (id: UInt64, continuation: CheckedContinuation<Wire.Message?, Never>)?
    private var nextWaiter: UInt64 = 0
    private var closed = false

    func deliver(_ message: Wire.Message) {
        if let w = waiter {
            waiter = nil
            w.continuation.resume(returning: message)
        } else {
            queued.append(message)
        }
    }

    func close() {
        closed = true
        if let w = waiter {
            waiter = nil
            w.continuation.resume(returning: nil)
        }
    }

    func next(within timeout: Duration) async -> Wire.Message? {
        if !queued.isEmpty { return queued.removeFirst() }
        if closed { return nil }
        nextWaiter += 1
        let id = nextWaiter
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.expire(id)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { waiter = (id, $0) }
    }

    private func expire(_ id: UInt64) {
        guard let w = waiter, w.id == id else { return }
        waiter = nil
        w.continuation.resume(returning: nil)
    }
}
