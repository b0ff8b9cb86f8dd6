// Sending the customer's message (text, or a photo with it) and showing the answer in the
// conversation view as its server-sent events stream in.

/** POSTs the message to `url` with `bearer`; resolves to the response, whose body streams. */
export function postMessage(url, bearer, text, file) {
  const headers = { Authorization: `Bearer ${bearer}` };
  let body;
  if (file) {
    body = new FormData();
    body.append("text", text);
    body.append("image", file, file.name || "pasted-image.png");
  } else {
    body = JSON.stringify({ text });
    headers["Content-Type"] = "application/json";
  }
  return fetch(url, { method: "POST", headers, body });
}

/** Shows the streamed answer in `view` (a ConversationView) until the stream ends. */
export async function showAnswer(response, view) {
  for await (const { event, data } of readEvents(response)) {
    if (event === "text") view.appendText(data.delta);
    else if (event === "restart") view.restart();
    else if (event === "tool_call") view.toolCall(data.id, data.name, data.arguments);
    else if (event === "tool_progress") view.toolProgress(data.id, data.text);
    else if (event === "tool_result") view.toolResult(data.id, data.name, data.content);
    else if (event === "error") view.notice(data.message);
  }
}

/** Yields {event, data} for each complete SSE frame in the response body. */
async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}
