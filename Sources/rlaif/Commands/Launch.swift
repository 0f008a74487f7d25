import ArgumentParser
import Coordinator
import Foundation
import Logging
import RLAIF
import Synchronization

/// Options shared by `launch` and `coordinator`: which config, which overrides, where to write.
struct RunOptions: ParsableArguments {
    @Argument(help: "Path to cluster.yaml; without it, the embedded defaults are used.")
    var config: String?

    @Option(help: "Run directory (default: run.directory, else runs/<run name>).")
    var runDir: String?

    @Option(name: .customLong("set"), help: "Override a key, e.g. --set rl.iterations=4 (repeatable).")
    var overrides: [String] = []

    @Flag(help: "Print only the summary.")
    var quiet = false

    @Flag(help: "Start over in a run directory that holds a run (by default its newest checkpoint is continued).")
    var fresh = false

    func load() throws -> ClusterConfig {
        do {
            if let config { return try ClusterConfig.load(path: config, overrides: overrides) }
            return try ClusterConfig.parse(yaml: "", file: "defaults", overrides: overrides)
        } catch {
            throw CommandFailure(error.description)
        }
    }

    func directory(_ config: ClusterConfig) -> URL {
        URL(fileURLWithPath: runDir ?? config.settings.runDirectory)
    }

    /// The checkpoint to continue from (`.some(nil)`: the beginning); nil when the run directory
    /// holds this run, finished (its summary is printed).
    func plan(_ config: ClusterConfig) throws -> Checkpoint?? {
        switch try ExistingRun.prepare(directory(config), config: config, fresh: fresh, quiet: quiet) {
        case .run(let checkpoint): return .some(checkpoint)
        case .finished(let summary):
            if let s = try? RunSummary.read(from: summary) { print(s.table) }
            print("rlaif: the run in \(directory(config).path) has finished (\(summary.path)); --fresh starts it over")
            return nil
        }
    }
}

/// `rlaif launch [CONFIG]`: the coordinator here, and `workers.local` worker processes beside it.
struct Launch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the job a cluster configuration describes: a coordinator and local workers.")

    @OptionGroup var options: RunOptions

    @Option(help: "Worker processes to start on this host (default: workers.local).")
    var workers: Int?

    @Option(help: "Engine threads per local worker (default: workers.threads, else cores / workers).")
    var threads: Int?

    @Flag(help: "Inside a Slurm allocation, start local workers instead of one per task with srun.")
    var noSlurm = false

    @Flag(help: "Check the configuration, data, keys, labeler, port and disk, print the plan, start nothing.")
    var dryRun = false

    func validate() throws {
        if let workers, workers < 0 { throw ValidationError("--workers must not be negative, got \(workers).") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads).") }
    }

    func run() async throws {
        // In an allocation (an sbatch script, salloc), workers are the allocation's tasks.
        let slurm = noSlurm ? nil : SlurmAllocation(environment: ProcessInfo.processInfo.environment)
        if dryRun {
            return try await DryRun(options: options, localWorkers: workers, threads: threads, slurm: slurm).run()
        }
        let config = try options.load()
        let count = slurm != nil ? 0 : workers ?? config.deployment.workers.local
        guard let resume = try options.plan(config) else { return }
        if let slurm, !options.quiet {
            print(
                "rlaif: Slurm job \(slurm.jobID): \(slurm.tasks) worker(s) × \(slurm.cpusPerTask) thread(s) by srun, "
                    + "the coordinator on \(slurm.node)")
        }
        try await runCluster(
            config: config, options: options, localWorkers: count,
            threads: threadsPerWorker(threads, deployment: config.deployment, workers: count), resume: resume,
            slurm: slurm)
    }
}

/// `rlaif coordinator CONFIG`: the coordinator alone; workers connect with `rlaif worker`.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator", abstract: "Run only the coordinator; start workers with `rlaif worker --connect`.")

    @OptionGroup var options: RunOptions
    @Option(name: .customLong("wait-for"), help: "Workers to wait for before the run starts (default 1).")
    var waitFor = 1

    func run() async throws {
        guard waitFor >= 1 else { throw ValidationError("--wait-for must be at least 1, got \(waitFor).") }
        let config = try options.load()
        guard let resume = try options.plan(config) else { return }
        try await runCluster(
            config: config, options: options, localWorkers: 0, threads: 1, resume: resume, waitFor: waitFor)
    }
}

/// `rlaif resume RUN_DIR`: continues a run from its newest checkpoint that verifies, with the
/// settings saved in it and the local workers they ask for.
struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a run from its newest valid checkpoint (corrupt or partial ones are skipped).")

    @Argument(help: "The run directory.")
    var runDir: String
    @Option(help: "Worker processes to start on this host (default: the saved workers.local).")
    var workers: Int?
    @Option(help: "Engine threads per local worker.")
    var threads: Int?
    @Flag(help: "Print only the summary.")
    var quiet = false

    func run() async throws {
        let directory = URL(fileURLWithPath: runDir)
        let store = CheckpointStore(runDirectory: directory, keep: 1)
        let checkpoint = store.newest(report: { FileHandle.standardError.write(Data("rlaif: \($0)\n".utf8)) })
        // Without a checkpoint (stopped before its first), the run starts over from its saved settings.
        let savedSettings: String
        if let checkpoint {
            savedSettings = checkpoint.settings
        } else if let saved = try? String(
            contentsOf: directory.appendingPathComponent(ClusterRun.settingsFile), encoding: .utf8)
        {
            savedSettings = saved
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("metrics.jsonl"))
            if !quiet { print("rlaif: no checkpoint verifies in \(store.root.path); starting the run over") }
        } else {
            throw CommandFailure(
                "\(directory.path) holds no checkpoint and no \(ClusterRun.settingsFile): is it a run directory? Start a run with `rlaif launch`."
            )
        }
        var config: ClusterConfig
        do { config = try ClusterConfig(json: savedSettings) } catch {
            throw CommandFailure("the saved settings cannot be read: \(error)")
        }
        let settings = config.settings
        // A run with keys resumes with the same keys, read again from the files it named.
        let keysURL = directory.appendingPathComponent(ClusterRun.keysFile)
        if let saved = try? Data(contentsOf: keysURL) {
            do {
                config.keys = try ClusterConfig.Keys(
                    JSONDecoder().decode(ClusterConfig.Keys.References.self, from: saved), source: keysURL.path)
            } catch {
                throw CommandFailure("this run used keys, and they cannot be used again: \(error)")
            }
        }
        let count = workers ?? config.deployment.workers.local
        let perWorker = threadsPerWorker(threads, deployment: config.deployment, workers: count)
        if !quiet, let checkpoint {
            print(
                "rlaif: resuming \(settings.run.name) at \(checkpoint.cursor.phase) (\(checkpoint.cursor.done) done, "
                    + "\(checkpoint.cursor.version) optimizer steps)")
        }
        var options = try RunOptions.parse(quiet ? ["--quiet"] : [])
        options.runDir = runDir
        try await runCluster(
            config: config, options: options, localWorkers: count, threads: perWorker, resume: checkpoint)
    }
}

/// Engine threads of each local worker: as asked, else `workers.threads`, else the cores shared out.
func threadsPerWorker(_ requested: Int?, deployment: Deployment, workers: Int) -> Int {
    if let requested { return requested }
    if deployment.workers.threads > 0 { return deployment.workers.threads }
    return max(1, ProcessInfo.processInfo.activeProcessorCount / max(workers, 1))
}

func runCluster(
    config: ClusterConfig, options: RunOptions, localWorkers: Int, threads: Int, resume: Checkpoint? = nil,
    waitFor: Int = 1, slurm: SlurmAllocation? = nil
) async throws {
    let roles = config.deployment.workers.localRoles
    if roles.count > localWorkers {
        throw CommandFailure(
            "workers.local_roles lists \(roles.count) roles for \(localWorkers) local workers: list at most one per "
                + "worker (workers.local, or --workers)")
    }
    LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
    var logger = Logger(label: "rlaif.coordinator")
    logger.logLevel = options.quiet ? .error : .warning
    let directory = options.directory(config)
    let settings = config.settings
    if !options.quiet {
        print(
            "rlaif: run \(settings.run.name) (\(settings.run.method)), seed \(settings.run.seed), "
                + "\(localWorkers) local worker(s) × \(threads) thread(s), run directory \(directory.path)")
        if config.keys == nil { print("rlaif: \(ClusterConfig.openClusterWarning)") }
    }
    let telemetry = try await RunTelemetry(config: config, directory: directory, quiet: options.quiet)
    let run = ClusterRun(
        config: config, directory: directory, workerExecutable: executablePath(), quiet: options.quiet, slurm: slurm,
        observers: telemetry.observers, logger: logger)
    telemetry.watch(run)
    let signals = StopSignals(run)
    defer { signals.cancel() }
    let summary: RunSummary
    do {
        summary = try await run.run(
            localWorkers: localWorkers, threadsPerWorker: threads, resume: resume, waitFor: waitFor)
    } catch let stopped as RunStopped {
        await telemetry.finish(report: false)
        print("rlaif: \(stopped); `rlaif launch` or `rlaif resume \(directory.path)` continues the run")
        throw ExitCode(128 + (signals.signal ?? SIGTERM))
    } catch {
        await telemetry.finish(report: false)
        throw error
    }
    print(summary.table)
    print("rlaif: summary in \(directory.appendingPathComponent("summary.json").path)")
    await telemetry.finish(report: config.deployment.coordinator.report)
}

/// This program's own path, to start workers with.
func executablePath() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// Ctrl-C (SIGINT) and SIGTERM (Slurm, Kubernetes, `kill`) stop a run the same way: it finishes
/// its step, writes a checkpoint there and stops its workers, and the process exits with 130 or
/// 143 (128 + the signal), so `rlaif launch` on the directory continues it. A run that has not
/// stopped after `grace` (a long rollout or labeling) is stopped at once; so is one given a
/// second signal.
final class StopSignals: @unchecked Sendable {
    static let grace: Duration = .seconds(25)
    private var sources: [DispatchSourceSignal] = []
    private let received = Mutex<Int32?>(nil)

    /// The signal that stopped the run, if one did.
    var signal: Int32? { received.withLock { $0 } }

    init(_ run: ClusterRun) { install(run) }

    private func install(_ run: ClusterRun) {
        sources = [(SIGINT, "Ctrl-C"), (SIGTERM, "SIGTERM")].map { number, name in
            Foundation.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .main)
            source.setEventHandler { [self] in
                let first = received.withLock { value in
                    defer { value = value ?? number }
                    return value == nil
                }
                guard first else { exit(128 + number) }
                FileHandle.standardError.write(
                    Data("\nrlaif: \(name): stopping at the next checkpoint (a second signal exits now)\n".utf8))
                let asked = run.requestStop()
                Task {
                    if asked { try? await Task.sleep(for: Self.grace) }
                    await run.interrupt()
                    exit(128 + number)
                }
            }
            source.resume()
            return source
        }
    }

    func cancel() { for source in sources { source.cancel() } }
}
