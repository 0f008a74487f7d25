import ArgumentParser
import CStdio
import Tensor

@main
struct Rlaif: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rlaif",
        abstract: "Distributed training orchestrator for Reinforcement Learning from AI Feedback.",
        subcommands: [
            Launch.self, Resume.self, CoordinatorCommand.self, WorkerCommand.self, Status.self, Keygen.self,
            Sample.self, Score.self, NewModel.self, SlurmCommand.self, ConfigCommand.self, ReportCommand.self,
        ])

    static func main() async {
        // Before any other thread allocates. Workers (and the model commands) move big tensors;
        // `launch`, `resume` and `coordinator` are the coordinator, which moves many small messages.
        let command = CommandLine.arguments.dropFirst().first ?? ""
        HeapTuning.apply(["worker", "sample", "score", "new-model"].contains(command) ? .compute : .messaging)
        // Progress and summaries reach a redirected log line by line (a stopped run's log was empty).
        rlaif_line_buffer_stdout()
        await main(nil)
    }
}
