<?xml version="1.0" encoding="utf-8"?>
<!--
  What a browser shows when someone opens one of lien's feeds (RSS 2.0 or Atom 1.0): the list as a
  readable page and how to subscribe, instead of raw XML. Feed readers ignore this file.
  XSLT 1.0, the only version browsers run. Item bodies are escaped HTML, and only some browsers can
  unescape them (disable-output-escaping), so the page shows titles and bylines, not bodies.
-->
<xsl:stylesheet version="1.0"
  xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:atom="http://www.w3.org/2005/Atom"
  xmlns:dc="http://purl.org/dc/elements/1.1/"
  exclude-result-prefixes="atom dc">
<xsl:output method="html" encoding="utf-8" indent="no" doctype-system="about:legacy-compat"/>

<xsl:template match="/">
  <xsl:variable name="title" select="rss/channel/title | atom:feed/atom:title"/>
  <xsl:variable name="format">
    <xsl:choose>
      <xsl:when test="rss">RSS 2.0</xsl:when>
      <xsl:otherwise>Atom 1.0</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>
  <xsl:variable name="self" select="rss/channel/atom:link[@rel='self']/@href | atom:feed/atom:link[@rel='self']/@href"/>
  <xsl:variable name="page" select="rss/channel/link | atom:feed/atom:link[@rel='alternate']/@href"/>
  <html lang="en">
  <head>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1"/>
    <title><xsl:value-of select="$title"/> (<xsl:value-of select="$format"/> feed)</title>
    <link rel="stylesheet" href="/static/lien.css?v=1"/>
    <style>
      .subscribe { margin: 1rem 0; padding: .8rem 1rem; border: 1px solid var(--line);
        border-left: 4px solid var(--accent); border-radius: .3rem; background: var(--panel); }
      .subscribe p { margin: .2rem 0; }
      .subscribe input { width: 100%; margin: .4rem 0; padding: .35rem .5rem; font: .9rem ui-monospace, monospace;
        color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: .25rem; }
      .subscribe .hint { font-size: .85rem; color: var(--muted); }
      .feed-items { list-style: none; margin: .5rem 0 2rem; padding: 0; }
      .feed-items li { padding: .45rem 0; border-bottom: 1px solid var(--line); }
      .feed-items .title { font-size: 1.02rem; font-weight: 600; margin: 0; line-height: 1.35; overflow-wrap: anywhere; }
      .feed-items .title a { color: var(--fg); }
      .description { color: var(--muted); margin: 0 0 .5rem; }
    </style>
  </head>
  <body>
    <header class="top">
      <nav class="menu">
        <a class="brand" href="/">lien</a>
        <a href="/">hot</a>
        <a href="/new">new</a>
        <a href="/top">top</a>
        <a href="/comments">comments</a>
        <a href="/tags">tags</a>
      </nav>
    </header>
    <main>
      <section class="subscribe">
        <p><strong>This is a feed.</strong> Subscribe: copy this URL into your feed reader
          (FreshRSS, NetNewsWire, Thunderbird, Feedly…) to follow this list.</p>
        <input type="text" readonly="readonly" value="{$self}" aria-label="Feed address" onclick="this.select()"/>
        <p class="hint">An <xsl:value-of select="$format"/> feed ·
          <a href="{$page}">see this list on the site</a></p>
      </section>
      <h1><xsl:value-of select="$title"/></h1>
      <p class="description"><xsl:value-of select="rss/channel/description | atom:feed/atom:subtitle"/></p>
      <ol class="feed-items">
        <xsl:apply-templates select="rss/channel/item | atom:feed/atom:entry"/>
      </ol>
      <xsl:if test="not(rss/channel/item | atom:feed/atom:entry)">
        <p class="description">Nothing here yet. New items will reach your reader as they arrive.</p>
      </xsl:if>
    </main>
  </body>
  </html>
</xsl:template>

<xsl:template match="item">
  <li>
    <p class="title"><a href="{link}"><xsl:value-of select="title"/></a></p>
    <p class="byline">
      <xsl:if test="dc:creator">by <span class="author"><xsl:value-of select="dc:creator"/></span> · </xsl:if>
      <!-- "Sun, 22 Nov 2026 02:33:06 +0000": the date part. -->
      <time><xsl:value-of select="substring(pubDate, 6, 11)"/></time>
      <xsl:for-each select="category"><xsl:text> </xsl:text><span class="tag"><xsl:value-of select="."/></span></xsl:for-each>
      <xsl:if test="comments"> · <a href="{comments}">discussion</a></xsl:if>
    </p>
  </li>
</xsl:template>

<xsl:template match="atom:entry">
  <li>
    <p class="title"><a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a></p>
    <p class="byline">
      <xsl:if test="atom:author">by <a class="author" href="{atom:author/atom:uri}"><xsl:value-of select="atom:author/atom:name"/></a> · </xsl:if>
      <time datetime="{atom:published}"><xsl:value-of select="substring(atom:published, 1, 10)"/></time>
      <xsl:for-each select="atom:category"><xsl:text> </xsl:text><span class="tag"><xsl:value-of select="@term"/></span></xsl:for-each>
      <xsl:if test="atom:link[@rel='replies']"> · <a href="{atom:link[@rel='replies']/@href}">discussion</a></xsl:if>
    </p>
  </li>
</xsl:template>

</xsl:stylesheet>
