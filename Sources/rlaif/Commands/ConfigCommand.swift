import ArgumentParser
import Coordinator
import RLAIF
import Foundation

/// `rlaif config [CONFIG] [--set …]`: the resolved configuration, every key with its value and
/// where the value came from (the default, a line of the file, or --set).
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Print the resolved configuration with each value's origin.")

    @Argument(help: "Path to cluster.yaml; without it, the embedded defaults.")
    var config: String?

    @Option(name: .customLong("set"), help: "Override a key, e.g. --set rl.iterations=4 (repeatable).")
    var overrides: [String] = []

    func run() throws {
        let reading = ClusterConfig.read(path: config, overrides: overrides)
        let width = reading.origins.map(\.key.count).max() ?? 0
        let valueWidth = min(40, reading.origins.map(\.value.count).max() ?? 0)
        for (key, json, origin) in reading.origins {
            let value = json.replacingOccurrences(of: "\\/", with: "/")
            let padded = key.padding(toLength: width, withPad: " ", startingAt: 0)
            let shown =
                value.count > valueWidth ? value : value.padding(toLength: valueWidth, withPad: " ", startingAt: 0)
            print("\(padded)  \(shown)  \(origin)")
        }
        guard reading.problems.isEmpty else {
            throw CommandFailure(reading.problems.map(\.description).joined(separator: "\n"))
        }
    }
}
