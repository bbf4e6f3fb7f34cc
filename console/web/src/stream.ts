// A server-sent-events client over fetch, so the bearer token travels in a header
// (EventSource cannot send one) and never in a URL.

export interface StreamMessage {
  event: string;
  data: string;
}

/** parseSSE splits buffered text into complete messages and the unparsed rest. */
export function parseSSE(buf: string): { messages: StreamMessage[]; rest: string } {
  const messages: StreamMessage[] = [];
  buf = buf.replace(/\r\n/g, '\n');
  let i: number;
  while ((i = buf.indexOf('\n\n')) >= 0) {
    const block = buf.slice(0, i);
    buf = buf.slice(i + 2);
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0) messages.push({ event, data: data.join('\n') });
  }
  return { messages, rest: buf };
}

/**
 * openStream reads /api/v1/stream until signal aborts; it resolves when the stream
 * ends and rejects with the HTTP status (e.g. 401, 403) when it is refused.
 */
export async function openStream(
  url: string,
  token: string,
  onMessage: (m: StreamMessage) => void,
  signal: AbortSignal,
): Promise<void> {
  const resp = await fetch(url, { headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' }, signal });
  if (!resp.ok || !resp.body) {
    let detail = '';
    try {
      const j = await resp.json();
      detail = j.detail ?? j.error ?? '';
    } catch {
      /* ignore */
    }
    throw Object.assign(new Error(detail || `stream refused: HTTP ${resp.status}`), { status: resp.status });
  }
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    const { messages, rest } = parseSSE(buf);
    buf = rest;
    for (const m of messages) onMessage(m);
  }
}
