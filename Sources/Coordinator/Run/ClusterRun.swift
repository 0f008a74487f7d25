import Foundation
import Logging
import Protocol
import Models
import RLAIF

/// A whole run on this machine's side: the coordinator's endpoint and scheduler, the local worker
/// processes it starts, the run directory, and the driver that runs the phases.
public final class ClusterRun: @unchecked Sendable {
    public let config: ClusterConfig
    public let directory: URL
    public let workerExecutable: String
    let logger: Logger
    let quiet: Bool
    private var children: [Process] = []
    /// The local worker processes among the children.
    private var localWorkers: [Process] = []
    /// The running scheduler and event log, for `interrupt()`.
    private var active: (scheduler: Scheduler, events: EventLog)?
    /// The driver, once the run has one: `stop()` asks it for a checkpoint and an end.
    private var driver: RunDriver?
    private let lock = NSLock()

    public static let settingsFile = "settings.json"
    /// Where the run's key files are named (`ClusterConfig.Keys.References`), in a cluster with keys.
    public static let keysFile = "keys.json"

    /// The Slurm allocation the run is in: its workers are started with `srun`, one per task.
    let slurm: SlurmAllocation?
    /// Set when the run ends on its own, so the end of the workers' `srun` step is expected.
    private var ending = false

    /// What watches the run's events besides metrics.jsonl.
    let observers: [any RunObserver]

    public init(
        config: ClusterConfig, directory: URL, workerExecutable: String, quiet: Bool = false,
        slurm: SlurmAllocation? = nil, observers: [any RunObserver] = [], logger: Logger
    ) {
        self.observers = observers
        self.config = config
        self.directory = directory
        self.workerExecutable = workerExecutable
        self.quiet = quiet
        self.slurm = slurm
        self.logger = logger
    }

    /// The coordinator's socket and the address workers are told. In a Slurm allocation a
    /// loopback bind is widened to every interface and advertised by this node's name.
    private func listen() throws -> (Endpoint, String) {
        let coordinator = config.deployment.coordinator
        var bind = coordinator.bind
        if slurm != nil, bind.hasPrefix("tcp://127.") || bind.hasPrefix("tcp://localhost") {
            bind = "tcp://0.0.0.0:" + (bind.split(separator: ":").last.map(String.init) ?? "0")
        }
        let endpoint = try Endpoint.listen(on: bind, security: config.coordinatorSecurity, logger: logger)
        guard coordinator.advertise.isEmpty else { return (endpoint, coordinator.advertise) }
        if let slurm, let port = endpoint.address.split(separator: ":").last {
            return (endpoint, "tcp://\(slurm.node):\(port)")
        }
        return (endpoint, endpoint.address)
    }

    /// Runs to the end; `localWorkers` processes are started here and stopped when it ends. With
    /// `resume`, the run continues from that checkpoint (its settings are `config.settings`). The
    /// first step waits for the started workers, and for at least `waitFor` workers in all.
    public func run(localWorkers: Int, threadsPerWorker: Int, resume: Checkpoint? = nil, waitFor: Int = 1) async throws
        -> RunSummary
    {
        let settings = config.settings
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let events = try EventLog(
            url: directory.appendingPathComponent("metrics.jsonl"), truncatingTo: resume?.cursor.metricsBytes,
            observers: observers)
        defer { events.close() }
        let (endpoint, advertised) = try listen()
        defer { endpoint.close() }
        try writeRunFiles(address: advertised)
        events.record(.runStarted(name: settings.run.name, seed: "\(settings.run.seed)", coordinator: advertised))
        if !quiet { print("rlaif: coordinator listening on \(advertised)") }

        // The data is read before any worker starts, so a bad file fails the launch at once.
        let task = try Self.taskData(settings)
        for notice in task.notices { logger.warning("\(notice)") }
        let scheduler = Scheduler(
            endpoint: endpoint, settings: settings, deployment: config.deployment,
            ringKeys: config.keys.map { $0.authorizedWorkers.sorted() } ?? [], events: events, logger: logger)
        if let resume {
            await scheduler.resume(version: resume.cursor.version, weights: resume.weights)
            events.record(
                .resumed(phase: resume.cursor.phase, done: resume.cursor.done, version: resume.cursor.version))
        }
        lock.withLock { active = (scheduler, events) }
        await scheduler.start()
        defer { stopChildren() }
        let started =
            try slurm.map { try startSlurmWorkers($0, coordinator: advertised, scheduler: scheduler) }
            ?? startWorkers(local: localWorkers, threads: threadsPerWorker, coordinator: advertised)
        // A local worker that exits before the run starts (killed, crashed) is not waited for;
        // when every worker the run started was local and all have exited, none is coming.
        let wanted: @Sendable () -> Int = { [weak self] in
            max(waitFor, started - (self?.exitedLocalWorkers ?? 0))
        }
        let onlyLocal = slurm == nil && started == localWorkers && localWorkers > 0 && waitFor <= localWorkers
        let abandoned: @Sendable () -> Bool = { [weak self] in onlyLocal && self?.exitedLocalWorkers == started }
        guard await scheduler.waitForWorkers(wanted, timeout: .seconds(120), unless: abandoned) else {
            await scheduler.shutdown(reason: "run aborted")
            let message =
                abandoned()
                ? "all \(started) local workers exited before registering (see worker-N.log in the run directory)"
                : "fewer than \(wanted()) workers registered within 120 s (\(exitedLocalWorkers) local "
                    + "worker(s) exited: see worker-N.log in the run directory)"
            throw RunError(message: message + firstWorkerError())
        }
        let driver = RunDriver(
            settings: settings, cluster: scheduler, events: events, directory: directory, logger: logger, task: task,
            checkpoints: CheckpointStore(runDirectory: directory, keep: settings.checkpoint.keep),
            resumeFrom: resume?.cursor, recordedSettings: config.sectionsJSON(), quiet: quiet)
        lock.withLock { self.driver = driver }
        return try await drive(driver, scheduler: scheduler, events: events)
    }

    /// Runs the phases, then ends the workers' part as the run ended: finished, stopped at a
    /// checkpoint when asked, or failed.
    private func drive(_ driver: RunDriver, scheduler: Scheduler, events: EventLog) async throws -> RunSummary {
        let summary: RunSummary
        do {
            summary = try await driver.run()
        } catch let stopped as RunStopped {
            await scheduler.shutdown(reason: "stopped")
            waitForChildren(timeout: 10)
            stopChildren()
            events.record(.interrupted)
            throw stopped
        } catch {
            await scheduler.shutdown(reason: "run failed: \(error)")
            throw error
        }
        lock.withLock { ending = true }
        events.record(.runFinished(jobsPerWorker: await scheduler.jobCounts()))
        await scheduler.shutdown(reason: "run finished")
        waitForChildren(timeout: 10)
        return summary
    }

    /// The current batch's jobs by kind (empty before the scheduler starts and between batches).
    public func occupancy() async -> [String: JobOccupancy] {
        guard let scheduler = lock.withLock({ active?.scheduler }) else { return [:] }
        return await scheduler.occupancy()
    }

    /// Asks the run to stop at its next checkpoint (it writes one there): `run` then throws
    /// `RunStopped`. False when the run has no driver yet (nothing to checkpoint).
    @discardableResult
    public func requestStop() -> Bool {
        guard let driver = lock.withLock({ driver }) else { return false }
        driver.requestStop()
        return true
    }

    /// Stops a running run from outside at once: workers are told to shut down, local worker
    /// processes are ended, and metrics.jsonl is closed with an `interrupted` line.
    public func interrupt() async {
        guard let (scheduler, events) = lock.withLock({ active }) else { return }
        await scheduler.shutdown(reason: "interrupted")
        stopChildren()
        events.record(.interrupted)
        events.close()
    }

    /// coordinator.json (where workers connect), the resolved settings (so `rlaif resume` can
    /// start over before the first checkpoint) and the keys' files (so a resumed run is as closed).
    private func writeRunFiles(address: String) throws {
        let info: [String: Any] = ["address": address, "pid": Int(ProcessInfo.processInfo.processIdentifier)]
        try JSONSerialization.data(withJSONObject: info, options: [.sortedKeys]).write(
            to: directory.appendingPathComponent("coordinator.json"), options: .atomic)
        try Data(config.sectionsJSON().utf8).write(
            to: directory.appendingPathComponent(Self.settingsFile), options: .atomic)
        let keysURL = directory.appendingPathComponent(Self.keysFile)
        if let keys = config.keys {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try encoder.encode(keys.references).write(to: keysURL, options: .atomic)
        } else {
            try? FileManager.default.removeItem(at: keysURL)
        }
    }

    /// Starts the local workers and those `workers.ssh` names; returns how many were started.
    private func startWorkers(local: Int, threads: Int, coordinator: String) throws -> Int {
        for i in 0..<local { try startWorker(index: i, coordinator: coordinator, threads: threads) }
        let remote = (try? config.deployment.workers.remoteHosts().get()) ?? []
        for host in remote {
            for i in 0..<host.count { try startRemoteWorker(on: host.destination, index: i, coordinator: coordinator) }
        }
        return local + remote.reduce(0) { $0 + $1.count }
    }

    /// One `srun` step with a worker on every task of the allocation. If the step ends before
    /// the run does (cancelled, preempted, every worker failed), the run ends: its newest
    /// checkpoint is what a requeued job continues from.
    private func startSlurmWorkers(_ slurm: SlurmAllocation, coordinator: String, scheduler: Scheduler) throws -> Int {
        let srun = slurm.workerCommand(
            executable: workerExecutable, coordinator: coordinator, extra: try keyArguments())
        try startChild("/usr/bin/env", srun, log: "workers.log") { [weak self] process in
            guard let self, !self.lock.withLock({ self.ending }) else { return }
            let error = RunError(
                message: "the workers' srun step ended with status \(process.terminationStatus) (see workers.log): "
                    + "the job was cancelled or its workers failed; a requeued job continues from the newest checkpoint"
            )
            Task { await scheduler.abort(error) }
        }
        return slurm.tasks
    }

    /// The first `Error:` line of an exited local worker's log, as the end of a message.
    private func firstWorkerError() -> String {
        let exited = lock.withLock { localWorkers.indices.filter { !localWorkers[$0].isRunning } }
        for index in exited {
            let log = directory.appendingPathComponent("worker-\(index).log")
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Error:") }) {
                return "; worker-\(index).log says: \(line)"
            }
        }
        return ""
    }

    /// Local worker processes this run started that have exited.
    private var exitedLocalWorkers: Int { lock.withLock { localWorkers.filter { !$0.isRunning }.count } }

    private func startWorker(index: Int, coordinator: String, threads: Int) throws {
        let worker = try startChild(
            workerExecutable,
            [
                "worker", "--connect", coordinator, "--threads", "\(threads)", "--name", "local-\(index)-\(getpid())",
                "--ring-bind", config.deployment.workers.ringBind, "--role",
                config.deployment.workers.localRole(index).rawValue,
            ] + (try keyArguments()), log: "worker-\(index).log")
        lock.withLock { localWorkers.append(worker) }
    }

    /// `--key` and `--coordinator-key` for the workers this run starts, in a cluster with keys.
    private func keyArguments() throws -> [String] {
        guard let keys = config.keys else { return [] }
        guard let file = keys.launchedWorkerKeyFile else {
            throw RunError(
                message: "keys.worker is not set: the workers rlaif launch starts need a key to join a cluster with "
                    + "keys. Add `worker: <secret key file from rlaif keygen>` under `keys:` (or start workers "
                    + "yourself with rlaif worker --key … and --workers 0).")
        }
        // One argument each: a Z85 key may begin with "-", which would read as an option.
        return ["--key=\(file)", "--coordinator-key=\(keys.coordinator.publicKey)"]
    }

    /// Starts a child process of the run, its output in `log` in the run directory; it is
    /// stopped with the run.
    @discardableResult
    private func startChild(
        _ executable: String, _ arguments: [String], log name: String,
        onExit: (@Sendable (Process) -> Void)? = nil
    ) throws -> Process {
        let p = Process()
        p.terminationHandler = onExit
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let log = directory.appendingPathComponent(name)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        lock.withLock { children.append(p) }
        return p
    }

    /// A worker on another host: `<workers.ssh_command> <destination> <workers.remote_rlaif> worker …`,
    /// its output in `ssh-<destination>-<index>.log`. The remote worker leaves when the coordinator
    /// shuts the run down (or stops hearing from it).
    private func startRemoteWorker(on destination: String, index: Int, coordinator: String) throws {
        let w = config.deployment.workers
        var command = [
            w.remoteRlaif, "worker", "--connect", coordinator, "--name", "ssh-\(destination)-\(index)-\(getpid())",
        ]
        if w.threads > 0 { command += ["--threads", "\(w.threads)"] }
        command += try keyArguments()
        let safe = destination.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }
        // The ssh command is the user's, as written (options included); the rest is quoted.
        try startChild(
            "/bin/sh",
            ["-c", w.sshCommand + " " + ([destination] + command).map(Self.shellQuoted).joined(separator: " ")],
            log: "ssh-\(String(safe))-\(index).log")
    }

    static func shellQuoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    private func waitForChildren(timeout: TimeInterval) {
        let deadline = Date().addingTimeInterval(timeout)
        for c in lock.withLock({ children }) {
            while c.isRunning && Date() < deadline { usleep(20_000) }
        }
    }

    private func stopChildren() {
        let running = lock.withLock {
            defer { children = [] }
            return children
        }
        for c in running where c.isRunning { c.terminate() }
        let deadline = Date().addingTimeInterval(5)
        for c in running { while c.isRunning && Date() < deadline { usleep(20_000) } }
    }
}

extension ClusterRun {
    /// The run's task data, read with the run's tokenizer, after checking that the data files
    /// and a `model.init` checkpoint still have the bytes the run recorded.
    static func taskData(_ settings: RunSettings) throws -> any TaskData {
        if let change = DataDigests.change(in: settings) { throw RunError(message: change) }
        let tokenizer: any Tokenizer
        do {
            let model = try RunModel(settings: settings)
            try model.verify(expectedDigest: settings.model.initDigest)
            tokenizer = model.tokenizer
        } catch let error as ModelError {
            throw RunError(message: error.message)
        } catch {
            throw RunError(message: "cannot read model.init: \(error.localizedDescription)")
        }
        do { return try TaskDataFactory.make(settings, tokenizer: tokenizer) } catch {
            throw RunError(message: error.description)
        }
    }
}
