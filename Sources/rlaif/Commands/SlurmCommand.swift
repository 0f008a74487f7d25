import ArgumentParser
import Coordinator
import RLAIF
import Foundation

/// `rlaif slurm CONFIG`: writes (and with `--submit`, submits) an sbatch script that runs the
/// job on a Slurm cluster: the coordinator in the batch step, a worker on every task. The job
/// is requeueable, SIGTERM reaches rlaif in time to checkpoint, and a requeued job continues.
struct SlurmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm", abstract: "Write (and submit) an sbatch script that runs a job on Slurm.")

    @OptionGroup var options: RunOptions
    @Option(help: "Nodes to allocate.") var nodes = 1
    @Option(help: "Worker tasks per node.") var workersPerNode = 1
    @Option(help: "CPUs (engine threads) per worker; default: the node's CPUs shared among its workers.")
    var cpusPerTask: Int?
    @Option(help: "Partition to submit to (default: the cluster's default).") var partition: String?
    @Option(help: "Time limit, in Slurm's format (e.g. 2:00:00).") var time: String?
    @Option(help: "Seconds before the time limit at which SIGTERM asks rlaif to checkpoint and stop.")
    var signalGrace = 90
    @Option(help: "Where to write the script (default: RUN_DIR/rlaif.sbatch).") var output: String?
    @Flag(help: "Submit the script with sbatch.") var submit = false

    func validate() throws {
        if nodes < 1 { throw ValidationError("--nodes must be at least 1, got \(nodes).") }
        if workersPerNode < 1 { throw ValidationError("--workers-per-node must be at least 1, got \(workersPerNode).") }
        if let cpusPerTask, cpusPerTask < 1 { throw ValidationError("--cpus-per-task must be at least 1.") }
        if signalGrace < 30 {
            throw ValidationError("--signal-grace must be at least 30 seconds (rlaif's stop takes up to 25).")
        }
        guard options.config != nil else { throw ValidationError("give the cluster.yaml the job runs (CONFIG).") }
    }

    func run() throws {
        let config = try options.load()
        let runDir = options.directory(config).standardizedFileURL
        try FileManager.default.createDirectory(at: runDir, withIntermediateDirectories: true)
        let script = URL(fileURLWithPath: output ?? runDir.appendingPathComponent("rlaif.sbatch").path)
        let text = SlurmScript(
            jobName: "rlaif-\(config.settings.run.name)", nodes: nodes, tasksPerNode: workersPerNode,
            cpusPerTask: cpusPerTask, partition: partition, time: time, signalGrace: signalGrace,
            log: runDir.appendingPathComponent("slurm-%j.out").path,
            command: [
                executablePath(), "launch", URL(fileURLWithPath: options.config!).standardizedFileURL.path,
                "--run-dir", runDir.path,
            ] + options.overrides.flatMap { ["--set", $0] }
        ).text
        do { try text.write(to: script, atomically: true, encoding: .utf8) } catch {
            throw CommandFailure("cannot write \(script.path): \(error.localizedDescription)")
        }
        print("rlaif: wrote \(script.path)")
        guard submit else { return }
        let sbatch = Process()
        sbatch.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sbatch.arguments = ["sbatch", "--parsable", script.path]
        let out = Pipe()
        sbatch.standardOutput = out
        do { try sbatch.run() } catch { throw CommandFailure("cannot run sbatch: \(error.localizedDescription)") }
        let id = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        sbatch.waitUntilExit()
        guard sbatch.terminationStatus == 0 else {
            throw CommandFailure("sbatch failed (status \(sbatch.terminationStatus))")
        }
        print("rlaif: submitted job \(id); `rlaif status \(runDir.path)` follows it")
    }
}

/// The sbatch script's text: options, then `exec rlaif launch` (so the batch step's SIGTERM is
/// rlaif's).
struct SlurmScript {
    let jobName: String
    let nodes: Int
    let tasksPerNode: Int
    let cpusPerTask: Int?
    let partition: String?
    let time: String?
    let signalGrace: Int
    let log: String
    let command: [String]

    var text: String {
        var lines = [
            "#!/bin/bash",
            "# Written by `rlaif slurm`. The batch step runs the coordinator; it starts one worker per task",
            "# with srun. --requeue and --signal: a preempted or requeued job is told in time, checkpoints,",
            "# and `rlaif launch` continues it from there when the job runs again.",
            "#SBATCH --job-name=\(jobName)",
            "#SBATCH --nodes=\(nodes)",
            "#SBATCH --ntasks-per-node=\(tasksPerNode)",
        ]
        if let cpusPerTask { lines.append("#SBATCH --cpus-per-task=\(cpusPerTask)") }
        if let partition { lines.append("#SBATCH --partition=\(partition)") }
        if let time { lines.append("#SBATCH --time=\(time)") }
        lines += [
            "#SBATCH --requeue", "#SBATCH --signal=B:TERM@\(signalGrace)", "#SBATCH --open-mode=append",
            "#SBATCH --output=\(log)", "", "exec " + command.map(Self.quoted).joined(separator: " "), "",
        ]
        return lines.joined(separator: "\n")
    }

    /// One shell word: as is when safe, else single-quoted.
    static func quoted(_ word: String) -> String {
        let safe = word.allSatisfy { $0.isLetter || $0.isNumber || "/._-=:,@%+".contains($0) }
        return safe && !word.isEmpty ? word : "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}
