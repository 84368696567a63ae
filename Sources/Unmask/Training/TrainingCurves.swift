import Foundation

/// The loss curves of a run, drawn from its `training_log.jsonl`: every step's loss, its moving
/// average, and the held-out loss at each evaluation.
public enum TrainingCurves {
    public static func svg(log: URL, title: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: log.path) else {
            throw UnmaskError.fileNotFound(path: log.path, what: "a training log")
        }
        var loss: [Int: Double] = [:], held: [Int: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let entry = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let step = entry["step"] as? Int else { continue }
            if let value = entry["loss"] as? Double { loss[step] = value }
            if let value = entry["eval_loss"] as? Double { held[step] = value }
        }
        let steps = Set(loss.keys).union(held.keys).sorted()
        let window = max(1, steps.count / 20)
        let perStep = steps.map { loss[$0] ?? .nan }
        let average = perStep.indices.map { i -> Double in
            let recent = perStep[max(0, i - window + 1)...i].filter(\.isFinite)
            return recent.isEmpty ? .nan : recent.reduce(0, +) / Double(recent.count)
        }
        let chart = SVGLineChart(title: title, xLabel: "optimizer step", yLabel: "loss", xValues: steps.map(Double.init),
                                 series: [("training loss", perStep), ("mean of last \(window)", average),
                                          ("held-out loss", steps.map { held[$0] ?? .nan })])
        return chart.svg
    }
}
