// Agent replies are Markdown. `marked` turns them into HTML in which raw HTML from the agent is
// shown as text (never parsed) and images become links (the page loads nothing from elsewhere:
// the CSP allows images only from the app's origin); DOMPurify then sanitises the result as a
// second line of defence, and the DOM gets it as a fragment (no string re-parse).
import { Marked } from 'marked';
import DOMPurify, { type Config } from 'dompurify';
import { copyText } from './clipboard';

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

const marked = new Marked({ gfm: true, breaks: false, async: false });
marked.use({
  renderer: {
    // Raw HTML in an agent's reply is text.
    html({ text }) {
      return escapeHtml(text);
    },
    // An image would be fetched from wherever it points: show a link to it instead.
    image({ href, text }) {
      const label = escapeHtml(text || href);
      return /^https?:/i.test(href) ? `<a href="${escapeHtml(href)}">🖼 ${label}</a>` : `🖼 ${label}`;
    },
  },
});

/** Markdown to HTML, before sanitising (exported for tests). */
export function markdownHtml(text: string): string {
  return marked.parse(text) as string;
}

let hooked = false;
function purifier() {
  if (!hooked) {
    hooked = true;
    // Links open outside the app, without telling the target where they came from.
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A') {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer nofollow');
      }
    });
  }
  return DOMPurify;
}

const SANITIZE: Config & { RETURN_DOM_FRAGMENT: true } = {
  RETURN_DOM_FRAGMENT: true,
  FORBID_TAGS: ['style', 'img', 'svg', 'math', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'video', 'audio'],
  FORBID_ATTR: ['style', 'class', 'id'],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
};

/** Renders Markdown into `el` (replacing what it held): code blocks get a copy button, tables scroll. */
export function renderMarkdown(el: HTMLElement, text: string) {
  const frag = purifier().sanitize(markdownHtml(text), SANITIZE);
  for (const pre of frag.querySelectorAll('pre')) {
    const box = document.createElement('div');
    box.className = 'code-block';
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.className = 'code-copy';
    copy.textContent = 'Copy';
    copy.addEventListener('click', () => {
      void copyText(pre.textContent ?? '').then((ok) => {
        copy.textContent = ok ? 'Copied' : 'Copy failed';
        setTimeout(() => (copy.textContent = 'Copy'), 1500);
      });
    });
    pre.replaceWith(box);
    box.append(pre, copy);
  }
  for (const table of frag.querySelectorAll('table')) {
    const scroll = document.createElement('div');
    scroll.className = 'table-scroll';
    table.replaceWith(scroll);
    scroll.append(table);
  }
  el.replaceChildren(frag);
  el.classList.add('md');
}
