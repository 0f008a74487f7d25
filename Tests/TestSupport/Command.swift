import Foundation

/// Runs a system command (found on PATH) to its end: nil when it succeeded, else its output
/// (stdout and stderr) or why it could not start.
@discardableResult
public func runCommand(_ arguments: [String]) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    do { try p.run() } catch { return "\(arguments.first ?? "") could not start: \(error)" }
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return p.terminationStatus == 0 ? nil : text
}
