// The CPU workload shared by the harness and the profiler: a rules document with 100 routes and
// 2,000 keywords, and an 8 KB prose prompt that matches one of its tasks late in the text.
import { testRules } from "../tests/e2e/harness.mjs";

export function bigRules(mockUrl) {
  const WORDS = ["deploy", "invoice", "latency", "refund", "kernel", "tensor", "ledger", "cursor", "webhook", "schema", "quota",
    "tariff", "sprint", "backlog", "payload", "cluster", "shard", "replica", "token", "vector", "lambda", "socket", "parser", "cache"];
  const tasks = {};
  for (let t = 0; t < 20; t++) {
    tasks[`task${t}`] = {
      keywords: Array.from({ length: 100 }, (_, k) => `${WORDS[(t + k) % 24]} ${WORDS[k % 24]}${t * 100 + k}`),
      regex: [`(?i)\\bticket-${t}\\d+\\b`],
    };
  }
  const routes = Array.from({ length: 100 }, (_, r) => ({
    name: `route${r}`,
    when: { task: `task${r % 20}`, "metadata.tier": { $in: [`tier${r % 5}`] }, estimated_tokens: { $lt: 100000 } },
    then: { fallback: ["fast", "fast"] },
  }));
  return testRules(mockUrl, { tasks, routes, default: "fast" });
}

export function prose8k() {
  const PROSE = "Our team has been reviewing the quarterly roadmap and we would like a short summary of the open questions. The customers who wrote in last week mostly asked about onboarding, pricing tiers and how the export feature handles large files. Could you draft a friendly reply that explains the next steps, mentions the timeline we agreed on, and invites them to the webinar? ";
  let s = "";
  while (s.length < 8192) s += PROSE + (s.length > 4096 && !s.includes("ticket-1342") ? "backlog deploy1300 ticket-1342 " : "");
  return s;
}
