#!/usr/bin/env python3
"""Fails when the modules of a crate form a cycle (run by scripts/test.sh).

A module depends on another when its code (comments and `#[cfg(test)] mod tests` left out)
names `crate::other...` or `super::sibling`; a module owning its children is not an edge. Prints
each cycle as the set of modules in it."""
import os, re, sys
def mods(crate):
    src=f'{crate}/src'; out={}
    for dp,_,fs in os.walk(src):
        for f in fs:
            if not f.endswith('.rs'): continue
            p=os.path.join(dp,f); rel=os.path.relpath(p,src)[:-3]
            parts=rel.split('/')
            if parts[-1] in('mod','lib','main'): parts=parts[:-1]
            out['::'.join(parts)]=open(p).read()
    return out
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
os.chdir(root)
found = 0
for crate in sorted(os.listdir('crates')):
    m=mods('crates/'+crate); names=set(m)
    g={}
    for k,src in m.items():
        # strip comments
        src=re.sub(r'//[^\n]*','',src)
        # drop #[cfg(test)] mod tests blocks roughly
        i=src.find('#[cfg(test)]\nmod tests')
        if i>=0: src=src[:i]
        deps=set()
        for ref in re.findall(r'crate::([a-z_0-9]+(?:::[a-z_0-9]+)*)',src):
            parts=ref.split('::')
            for n in range(len(parts),0,-1):
                cand='::'.join(parts[:n])
                if cand in names: deps.add(cand); break
        if '::' in k or True:
            for ref in re.findall(r'super::([a-z_0-9]+)',src):
                parent='::'.join(k.split('::')[:-1])
                cand=(parent+'::'+ref) if parent else ref
                if cand in names: deps.add(cand)
        # submodule -> parent via super:: itself
        deps.discard(k)
        # ignore parent->child edges (a module owns its children)
        g[k]={d for d in deps if not d.startswith(k+'::')}
    # find cycles via SCC
    idx={};low={};st=[];on=set();res=[];c=[0]
    def sc(v):
        idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
        for w in g.get(v,()):
            if w not in idx: sc(w);low[v]=min(low[v],low[w])
            elif w in on: low[v]=min(low[v],idx[w])
        if low[v]==idx[v]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==v:break
            if len(comp)>1: res.append(comp)
    sys.setrecursionlimit(10000)
    for v in g:
        if v not in idx: sc(v)
    for comp in res:
        found += 1
        print(f'crates/{crate}: module cycle: {sorted(comp)}')
if found:
    sys.exit(1)
print('module graph: no cycles')
