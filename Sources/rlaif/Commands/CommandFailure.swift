/// A command that could not do its work (a config, a file, a peer, a run): printed as
/// `Error: …` without the usage lines, which belong to mistakes in the arguments themselves.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
