import ArgumentParser
import Foundation
import Models
import Tensor

/// `rlaif score`: log-probabilities of completions given prompts, one JSON line each.
struct Score: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the log-probability of each completion given its prompt.",
        discussion: """
            Each input line is {"prompt": …, "completion": …}. Each output line is
            {"total_logprob": …, "token_logprobs": […], "tokens": n}, in input order.
            """)

    @Option(help: "Model directory (config.json, model.safetensors, tokenizer files).") var model: String
    @Option(help: "A JSON-lines file of prompt/completion pairs.") var input: String
    @Option(help: "Pairs scored per batch.") var batchSize = 8

    struct Pair: Decodable {
        let prompt: String
        let completion: String
    }

    func run() async throws {
        let directory: ModelDirectory
        do { directory = try ModelDirectory(model) } catch { throw CommandFailure(error.message) }
        let text: String
        do { text = try String(contentsOfFile: input, encoding: .utf8) } catch {
            throw CommandFailure("cannot read \(input): \(error.localizedDescription)")
        }
        // Every line is checked before any is scored, so a bad line costs no compute.
        var pairs: [([Int32], [Int32])] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let pair = try? JSONDecoder().decode(Pair.self, from: Data(line.utf8)) else {
                throw CommandFailure("\(input):\(number + 1): expected {\"prompt\": string, \"completion\": string}")
            }
            let p = directory.tokenizer.encode(pair.prompt), c = directory.tokenizer.encode(pair.completion)
            guard !p.isEmpty, !c.isEmpty else {
                throw CommandFailure("\(input):\(number + 1): prompt and completion must both be non-empty")
            }
            guard p.count + c.count <= directory.model.contextLength else {
                throw CommandFailure(
                    "\(input):\(number + 1): \(p.count + c.count) tokens exceed the model's context of \(directory.model.contextLength)"
                )
            }
            pairs.append((p, c))
        }
        for start in stride(from: 0, to: pairs.count, by: max(1, batchSize)) {
            let batch = Array(pairs[start..<min(pairs.count, start + max(1, batchSize))])
            let rows = await Engine.shared.infer { () -> [[Float]] in
                let lp = directory.model.continuationLogProbs(prompts: batch.map(\.0), continuations: batch.map(\.1))
                    .value
                let (t, all) = (lp.shape[1], lp.scalars)
                return batch.enumerated().map { i, pair in
                    let first = i * t + pair.0.count - 1  // the position that predicts the first completion token
                    return Array(all[first..<(first + pair.1.count)])
                }
            }
            for row in rows {
                let json: [String: Any] = [
                    "total_logprob": Double(row.reduce(0, +)), "token_logprobs": row.map(Double.init),
                    "tokens": row.count,
                ]
                let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }
}
