"""Images -> CLIP embeddings: fetch each ``gold/user_images`` URL into a content-addressed cache
(``fetch``), embed the decoded images with open_clip on Ray Data actors (``clip``, ``embed``) and
write ``gold/image_embeddings`` (``stage``). ``zipp embed-images`` drives it (``cli``)."""
