import { describe, expect, it } from 'vitest';
import { markdownHtml } from '../src/markdown';

describe('markdown', () => {
  it('renders the usual Markdown of agent replies', () => {
    const html = markdownHtml('# Plan\n\n- **one**\n- `two`\n\n```rust\nfn main() {}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n');
    expect(html).toContain('<h1>Plan</h1>');
    expect(html).toContain('<strong>one</strong>');
    expect(html).toContain('<code>two</code>');
    expect(html).toMatch(/<pre><code[^>]*>fn main\(\) \{\}\n<\/code><\/pre>/);
    expect(html).toContain('<table>');
  });

  it('shows raw HTML as text, never as markup', () => {
    const html = markdownHtml('hi <script>alert(1)</script> and <img src=x onerror=alert(2)>\n\n<div onclick="x()">block</div>');
    expect(html).not.toMatch(/<script|<img|<div/i);
    expect(html).toContain('&lt;script&gt;');
    expect(html).toContain('&lt;img src=x onerror=alert(2)&gt;');
  });

  it('turns images into links and fetches nothing', () => {
    const html = markdownHtml('![chart](https://example.com/c.png) ![local](c.png)');
    expect(html).not.toContain('<img');
    expect(html).toContain('<a href="https://example.com/c.png">🖼 chart</a>');
    expect(html).toContain('🖼 local');
  });
});
