"""Labelled datasets on disk: YOLO and COCO readers and the class maps onto the catalogue."""
