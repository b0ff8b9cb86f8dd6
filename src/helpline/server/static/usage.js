// What a conversation's model replies cost, shown beside a ticket on the agents' page.

import { el } from "./common.js";

/** A cost for people: `$0.0042`, `$1.25`. */
function formatCost(usd) {
  return usd >= 1 ? `$${usd.toFixed(2)}` : `$${usd.toFixed(4)}`;
}

/** Adds "Model cost: $0.0123 · 12,345 tokens in (3,000 cached) · 456 out" to `meta` once
 * `api` (the page's authorised fetch) has read the conversation's usage. Nothing is added
 * for a conversation the model never answered. */
export async function showCost(meta, conversationId, api) {
  const usage = await api(`/api/conversations/${encodeURIComponent(conversationId)}/usage`);
  if (!usage.replies) return;
  const cost = usage.cost_usd === null ? "unknown" : formatCost(usage.cost_usd);
  const numbers = new Intl.NumberFormat("en");
  const line = el(
    "span",
    "cost",
    `Model cost: ${cost}${usage.unpriced_replies && usage.cost_usd !== null ? " + unknown" : ""}` +
      ` · ${numbers.format(usage.prompt_tokens)} tokens in` +
      ` (${numbers.format(usage.cached_tokens)} cached)` +
      ` · ${numbers.format(usage.completion_tokens)} out`,
  );
  line.dataset.costUsd = String(usage.cost_usd);
  meta.append(line);
}
