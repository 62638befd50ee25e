// Draws a message's `md` (Rocket.Chat's message-parser AST, which the server computes) as DOM.
// Text always goes through Preact's text nodes: nothing here sets innerHTML.

import type { ComponentChildren } from 'preact';
import { emojiFor } from './emoji';
import type { MdNode } from './types';

function children(nodes: MdNode[] | undefined): ComponentChildren {
  return (nodes ?? []).map((n, i) => <Node key={i} node={n} />);
}

function text(v: any): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof v.value === 'string') return v.value;
  return '';
}

function safeHref(src: string): string | undefined {
  const url = src.startsWith('//') ? `https:${src}` : src;
  return /^(https?:|mailto:)/i.test(url) ? url : /^[\w.-]+\.[a-z]{2,}/i.test(url) ? `https://${url}` : undefined;
}

function Node({ node }: { node: MdNode }) {
  switch (node.type) {
    case 'PARAGRAPH':
      return <p>{children(node.value)}</p>;
    case 'PLAIN_TEXT':
      return <>{text(node)}</>;
    case 'BOLD':
      return <strong>{children(node.value)}</strong>;
    case 'ITALIC':
      return <em>{children(node.value)}</em>;
    case 'STRIKE':
      return <del>{children(node.value)}</del>;
    case 'INLINE_CODE':
      return <code>{text(node.value)}</code>;
    case 'CODE':
      return (
        <pre class="code-block">
          <code>{(node.value as MdNode[]).map((l) => text(l.value)).join('\n')}</code>
        </pre>
      );
    case 'LINK': {
      const src = text(node.value?.src);
      const url = safeHref(src);
      const label = node.value?.label;
      const shown = Array.isArray(label) ? children(label) : text(label) || src;
      return url ? (
        <a href={url} target="_blank" rel="noopener noreferrer">
          {shown}
        </a>
      ) : (
        <>{shown}</>
      );
    }
    case 'MENTION_USER': {
      const name = text(node.value);
      return <span class={`mention${name === 'all' || name === 'here' ? ' mention-all' : ''}`}>@{name}</span>;
    }
    case 'MENTION_CHANNEL': {
      const name = text(node.value);
      return (
        <a class="mention-channel" href={`/channel/${encodeURIComponent(name)}`}>
          #{name}
        </a>
      );
    }
    case 'EMOJI': {
      if (node.unicode) return <span class="emoji">{node.unicode}</span>;
      const code = node.shortCode ?? text(node.value);
      return <span class="emoji" title={`:${code}:`}>{emojiFor(code) ?? `:${code}:`}</span>;
    }
    case 'BIG_EMOJI':
      return <p class="big-emoji">{children(node.value)}</p>;
    case 'QUOTE':
      return <blockquote>{children(node.value)}</blockquote>;
    case 'HEADING': {
      const level = Math.min(Math.max(Number(node.level) || 1, 1), 4);
      const H = `h${level + 2}` as 'h3';
      return <H>{children(node.value)}</H>;
    }
    case 'UNORDERED_LIST':
      return <ul>{children(node.value)}</ul>;
    case 'ORDERED_LIST':
      return <ol>{children(node.value)}</ol>;
    case 'LIST_ITEM':
      return <li>{children(node.value)}</li>;
    case 'TASKS':
      return <ul class="tasks">{children(node.value)}</ul>;
    case 'TASK':
      return (
        <li>
          <input type="checkbox" checked={!!node.status} disabled /> {children(node.value)}
        </li>
      );
    case 'LINE_BREAK':
      return <br />;
    case 'HORIZONTAL_RULE':
      return <hr />;
    case 'SPOILER_BLOCK':
    case 'SPOILER':
      return <details class="spoiler"><summary>Spoiler</summary>{children(node.value)}</details>;
    case 'TIMESTAMP': {
      const secs = Number(node.value?.timestamp);
      return <time>{Number.isFinite(secs) ? new Date(secs * 1000).toLocaleString() : ''}</time>;
    }
    default:
      // KaTeX, tables and whatever comes later: the source text is better than nothing.
      return Array.isArray(node.value) ? <>{children(node.value)}</> : <>{text(node.value)}</>;
  }
}

export function Markdown({ md, fallback }: { md?: MdNode[]; fallback: string }) {
  if (!md || md.length === 0) return <p>{fallback}</p>;
  return <>{children(md)}</>;
}
