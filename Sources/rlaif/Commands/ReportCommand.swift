import ArgumentParser
import Foundation
import Telemetry

/// `rlaif report RUN_DIR`: report.html for a run, finished or not.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write RUN_DIR/report.html: the summary, curves, win rate, labeler figures, worker timeline.")

    @Argument(help: "The run directory.")
    var runDir: String

    func run() async throws {
        let directory = URL(fileURLWithPath: runDir)
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("metrics.jsonl").path) else {
            throw CommandFailure("\(directory.path) has no metrics.jsonl: is it a run directory?")
        }
        do {
            print(try RunReport.write(runDirectory: directory).path)
        } catch {
            throw CommandFailure("the report could not be written: \(error)")
        }
    }
}
