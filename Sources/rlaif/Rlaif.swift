import ArgumentParser
import Tensor

@main
struct Rlaif: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rlaif",
        abstract: "Distributed training orchestrator for Reinforcement Learning from AI Feedback.",
        subcommands: [Launch.self, Resume.self, CoordinatorCommand.self, WorkerCommand.self, Status.self, Keygen.self, Sample.self, Score.self])

    static func main() async {
        HeapTuning.keepLargeBuffers()  // before any other thread allocates
        await main(nil)
    }
}
